"""Helpers of the python_buildpack, run with the stack's python3 (standard
library only). Usage:

  python3 pytool.py pipfile-lock FILE   prints the lock's default packages as
                                        requirements.txt lines; exit 2 with a
                                        message on what pip cannot install
                                        from a lock offline (git, hg, ...)
  python3 pytool.py pyproject FILE      prints [project] dependencies of a
                                        pyproject.toml as requirements.txt
                                        lines; exit 3 when this python cannot
                                        read TOML (before 3.11), 2 with a
                                        message when it lists none a pip
                                        install can use (a Poetry project)
  python3 pytool.py relocate VENV       makes the scripts in VENV/bin start
                                        the venv's python next to them, so
                                        the venv works wherever the droplet
                                        is unpacked (staging builds it at
                                        /tmp/app, apps run at /home/vcap/app)
  python3 pytool.py runtime SPEC VER    exit 0 when the python version VER
                                        meets SPEC (runtime.txt's
                                        "python-3.11.x", "3.11", "3.11.2"),
                                        1 when not, 2 when SPEC is unreadable
  python3 pytool.py reqs FILE           prints what a requirements file asks
                                        for: "none" (only blank and comment
                                        lines), "local" (it names other files:
                                        -r, -c, -e, paths, file: URLs, local
                                        --find-links), else "index"
  python3 pytool.py digest PATH...      prints a sha256 of the files at PATHs
                                        (directories walked; missing ones
                                        count as missing), of the PIP_*
                                        environment and of the python running
                                        it (path, version, size, mtime)
  python3 pytool.py pinned FILE SITE BEFORE
                                        exit 0 when every distribution in
                                        the site-packages dir SITE that is
                                        not listed in the file BEFORE (its
                                        entries before pip ran) is pinned to
                                        its version with == in the
                                        requirements FILE; else 1, printing
                                        the first one that is not
  python3 pytool.py seedid              prints a sha256 of what a new venv's
                                        pip and setuptools come from: the
                                        python running it (path, version,
                                        size, mtime) and the wheels its
                                        ensurepip installs
  python3 pytool.py keep SRC DST SEED   copies the directory SRC to DST (new),
                                        hard-linking each file that SEED has
                                        at the same place with the same
                                        mode, size, modification time and
                                        content, so a build cache holding
                                        both stores those files once
"""

import hashlib
import json
import os
import re
import shutil
import stat
import sys

# A script's first lines after relocation: sh runs the line that execs the
# python beside the script's real path; python reads the lines as a string.
RELOCATABLE = (
    "#!/bin/sh\n"
    "'''exec' \"$(dirname -- \"$(realpath -- \"$0\")\")/{python}\" \"$0\" \"$@\"\n"
    "' '''\n"
)


def fail(code, msg):
    sys.stderr.write("**ERROR** " + msg + "\n")
    sys.exit(code)


def pipfile_lock(path):
    try:
        with open(path, encoding="utf-8") as f:
            lock = json.load(f)
    except (OSError, ValueError) as err:
        fail(2, "Pipfile.lock cannot be read: %s" % err)
    if not isinstance(lock, dict) or not isinstance(lock.get("default", {}), dict):
        fail(2, "Pipfile.lock has no \"default\" object of packages")
    out = []
    for name, spec in sorted(lock.get("default", {}).items()):
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", name) or not isinstance(spec, dict):
            fail(2, "Pipfile.lock: entry %r is not a package this buildpack reads" % name)
        for vcs in ("git", "hg", "svn", "bzr"):
            if vcs in spec:
                fail(2, "Pipfile.lock: %s comes from %s (%s), which this buildpack does not install "
                     "(staging may have no network access). Build a wheel of it (pip wheel -w vendor/ ...), "
                     "push it in vendor/ and lock it by version." % (name, vcs, spec[vcs]))
        extras = spec.get("extras") or []
        req = name + ("[%s]" % ",".join(extras) if extras else "")
        if "path" in spec:
            if spec.get("editable"):
                sys.stderr.write("       Note: %s is installed from %s as a regular (not editable) package\n"
                                 % (name, spec["path"]))
            req = spec["path"]
        elif "file" in spec:
            req = "%s @ %s" % (req, spec["file"])
        else:
            version = spec.get("version", "")
            if version == "*":
                version = ""
            req += version
        markers = spec.get("markers")
        if markers:
            req += " ; " + markers
        out.append(req)
    sys.stdout.write("".join(line + "\n" for line in out))


def pyproject(path):
    try:
        import tomllib
    except ImportError:
        sys.exit(3)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, ValueError) as err:
        fail(2, "pyproject.toml cannot be read: %s" % err)
    project = data.get("project")
    if not isinstance(project, dict) or "dependencies" not in project:
        if "poetry" in data.get("tool", {}):
            fail(2, "pyproject.toml is a Poetry project, whose dependencies this buildpack does not read. "
                 "Export them: poetry export -f requirements.txt -o requirements.txt, and push the requirements.txt.")
        return
    deps = project["dependencies"]
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        fail(2, "pyproject.toml: [project] dependencies is not a list of requirement strings")
    sys.stdout.write("".join(d + "\n" for d in deps))


def relocate(venv):
    bindir = os.path.join(os.path.abspath(venv), "bin")
    for entry in sorted(os.listdir(bindir)):
        path = os.path.join(bindir, entry)
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        if not data.startswith(b"#!"):
            continue
        first, _, rest = data.partition(b"\n")
        interp = first[2:].strip().decode("utf-8", "replace")
        if os.path.dirname(interp) != bindir:
            continue
        head = RELOCATABLE.format(python=os.path.basename(interp)).encode()
        tmp = path + ".pando-tmp"
        with open(tmp, "wb") as f:
            f.write(head + rest)
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)


def runtime(spec, version):
    m = re.match(r"^(?:python-)?(\d+(?:\.(?:\d+|x|\*))*)$", spec.strip())
    if not m:
        sys.exit(2)
    want = m.group(1).split(".")
    have = version.split(".")
    for i, part in enumerate(want):
        if part in ("x", "*"):
            break
        if i >= len(have) or have[i] != part:
            sys.exit(1)
    sys.exit(0)


def req_lines(path):
    """The requirement lines of a requirements file: continuations joined,
    comments and blank lines left out."""
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    text = re.sub(r"\\\r?\n", " ", text)
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            yield line


LOCAL_OPTIONS = ("-r", "--requirement", "-c", "--constraint", "-e", "--editable")
LINKS_OPTIONS = ("-f", "--find-links")
NAMED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*($|;|[<>=!~]|@\s*https?://)")


def reqs(path):
    kind = "none"
    for line in req_lines(path):
        if line.startswith("-"):
            opt, value = _option(line)
            if opt in LOCAL_OPTIONS or (opt in LINKS_OPTIONS and not re.match(r"^https?://", value)):
                print("local")
                return
            continue
        if not NAMED.match(line) or "file:" in line:
            print("local")
            return
        kind = "index"
    print(kind)


def _option(line):
    m = re.match(r"^(-[A-Za-z]|--[A-Za-z-]+)(?:\s*=\s*|\s+)?(.*)$", line)
    if not m:
        return line, ""
    return m.group(1), m.group(2).strip()


def _hasher():
    h = hashlib.sha256()

    def add(*parts):
        for part in parts:
            data = part if isinstance(part, bytes) else str(part).encode("utf-8", "replace")
            h.update(b"%d:" % len(data) + data)

    exe = os.path.realpath(sys.executable)
    st = os.stat(exe)
    add("python", exe, sys.version, st.st_size, st.st_mtime_ns)
    return h, add


def digest(paths):
    h, add = _hasher()
    for k in sorted(os.environ):
        if k.startswith("PIP_"):
            add("env", k, os.environ[k])
    for path in paths:
        if os.path.isdir(path):
            files = []
            for root, dirs, names in os.walk(path):
                dirs.sort()
                files.extend(os.path.join(root, n) for n in sorted(names))
        else:
            files = [path]
        add("path", os.path.basename(os.path.normpath(path)), len(files))
        for f in files:
            if not os.path.isfile(f):
                add("missing", f)
                continue
            fh = hashlib.sha256()
            with open(f, "rb") as fd:
                for chunk in iter(lambda: fd.read(1 << 20), b""):
                    fh.update(chunk)
            add("file", os.path.relpath(f, path) if f != path else "", fh.hexdigest())
    print(h.hexdigest())


def seedid():
    h, add = _hasher()
    import ensurepip
    add("ensurepip", ensurepip.version())
    try:
        packages = ensurepip._get_packages()  # private: the wheels it installs
    except Exception:  # noqa: BLE001 - another python's ensurepip: its version alone
        packages = {}
    for name in sorted(packages):
        pkg = packages[name]
        wheel = getattr(pkg, "wheel_path", None) or getattr(pkg, "wheel_name", None) or ""
        size = os.stat(wheel).st_size if wheel and os.path.isfile(wheel) else -1
        add("package", name, getattr(pkg, "version", ""), wheel, size)
    print(h.hexdigest())


def _same_file(a, sa, b):
    try:
        sb = os.lstat(b)
    except OSError:
        return False
    if (sa.st_mode, sa.st_size, sa.st_mtime_ns) != (sb.st_mode, sb.st_size, sb.st_mtime_ns):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(1 << 20), fb.read(1 << 20)
            if ca != cb:
                return False
            if not ca:
                return True


def keep(src, dst, seed):
    os.mkdir(dst)
    shutil.copymode(src, dst)
    for root, dirs, names in os.walk(src):
        rel = os.path.relpath(root, src)
        out = os.path.normpath(os.path.join(dst, rel))
        for d in list(dirs):
            p = os.path.join(root, d)
            if os.path.islink(p):  # os.walk lists a symlink to a dir as a dir
                dirs.remove(d)
                names.append(d)
            else:
                os.mkdir(os.path.join(out, d))
                shutil.copymode(p, os.path.join(out, d))
        for n in names:
            p, q = os.path.join(root, n), os.path.join(out, n)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(p), q)
            elif stat.S_ISREG(st.st_mode):
                s = os.path.normpath(os.path.join(seed, rel, n))
                if _same_file(p, st, s):
                    os.link(s, q)
                else:
                    shutil.copy2(p, q)


def _norm_name(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _norm_version(v):
    v = v.strip().lower()
    if v.startswith("v"):
        v = v[1:]
    while v.endswith(".0") and v.count(".") > 0:
        v = v[:-2]
    return v


PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*===?\s*([A-Za-z0-9.+!_-]+)$")


def pinned(path, site, before):
    pins = {}
    for line in req_lines(path):
        if line.startswith("-"):
            continue
        line = line.split(";", 1)[0]
        line = re.split(r"\s--?[A-Za-z]", " " + line, maxsplit=1)[0].strip()
        m = PIN.match(line)
        if m:
            pins[_norm_name(m.group(1))] = _norm_version(m.group(2))
    with open(before, encoding="utf-8") as f:
        old = set(f.read().split())
    for entry in sorted(os.listdir(site)):
        if entry in old:
            continue
        base, ext = os.path.splitext(entry)
        if ext not in (".dist-info", ".egg-info"):
            continue
        parts = base.split("-")
        if len(parts) < 2:
            print(entry)
            sys.exit(1)
        name, version = _norm_name(parts[0]), _norm_version(parts[1])
        if pins.get(name) != version:
            print("%s %s" % (parts[0], parts[1]))
            sys.exit(1)
    sys.exit(0)


def main(argv):
    if len(argv) == 2 and argv[0] == "pipfile-lock":
        return pipfile_lock(argv[1])
    if len(argv) == 2 and argv[0] == "pyproject":
        return pyproject(argv[1])
    if len(argv) == 2 and argv[0] == "relocate":
        return relocate(argv[1])
    if len(argv) == 3 and argv[0] == "runtime":
        return runtime(argv[1], argv[2])
    if len(argv) == 2 and argv[0] == "reqs":
        return reqs(argv[1])
    if len(argv) >= 1 and argv[0] == "digest":
        return digest(argv[1:])
    if len(argv) == 4 and argv[0] == "pinned":
        return pinned(argv[1], argv[2], argv[3])
    if len(argv) == 1 and argv[0] == "seedid":
        return seedid()
    if len(argv) == 4 and argv[0] == "keep":
        return keep(argv[1], argv[2], argv[3])
    fail(2, "usage: pytool.py pipfile-lock FILE | pyproject FILE | relocate VENV | runtime SPEC VERSION | "
         "reqs FILE | digest PATH... | pinned FILE SITE BEFORE | seedid | keep SRC DST SEED")


if __name__ == "__main__":
    main(sys.argv[1:])
