'use strict';
// Answers the nodejs_buildpack's questions about package.json, run with the
// stack's node (no modules needed). Usage:
//
//   node pkg.js web APP_DIR                   prints the default web command
//   node pkg.js satisfies VERSION RANGE       exit 0 met, 1 unmet, 2 bad range
//   node pkg.js info APP_DIR [NPM_BIN]        prints, as shell assignments, all
//                                             bin/finalize asks (one node start
//                                             instead of one per question): see
//                                             info() below; exit 2 on bad input
//
// Ranges are npm's: space-separated comparators (<, <=, >, >=, =), ^ and ~,
// x-ranges (1, 1.x, 1.2.*, *), hyphen ranges (1.2 - 2) and sets joined by ||.
// Prerelease versions order as semver says; npm's rule that excludes them
// from ranges is not applied (a stack's node is a release).

const fs = require('fs');
const path = require('path');

const ident = '(?:-([0-9A-Za-z.-]+))?(?:\\+[0-9A-Za-z.-]+)?';
const fullRe = new RegExp('^v?(\\d+)\\.(\\d+)\\.(\\d+)' + ident + '$');
const partialRe = new RegExp('^[v=]?(\\d+|[xX*])(?:\\.(\\d+|[xX*]))?(?:\\.(\\d+|[xX*]))?' + ident + '$');

function ver(major, minor, patch, pre) {
  return { major, minor, patch, pre: pre || [] };
}

function parseVersion(s) {
  const m = fullRe.exec(String(s).trim());
  return m ? ver(+m[1], +m[2], +m[3], m[4] ? m[4].split('.') : []) : null;
}

// parsePartial reads X, X.Y or X.Y.Z where parts may be wildcards (null):
// everything after the first wildcard is a wildcard.
function parsePartial(s) {
  const m = partialRe.exec(s);
  if (!m) return null;
  const num = (x) => (x === undefined || /^[xX*]$/.test(x) ? null : +x);
  const p = ver(num(m[1]), num(m[2]), num(m[3]), m[4] ? m[4].split('.') : []);
  if (p.major === null) p.minor = null;
  if (p.minor === null) p.patch = null;
  return p;
}

function comparePre(a, b) {
  if (!a.length || !b.length) return b.length - a.length; // a release is above its prereleases
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i >= a.length) return -1;
    if (i >= b.length) return 1;
    const na = /^\d+$/.test(a[i]);
    const nb = /^\d+$/.test(b[i]);
    if (na && nb && +a[i] !== +b[i]) return +a[i] < +b[i] ? -1 : 1;
    if (na !== nb) return na ? -1 : 1;
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

function compare(a, b) {
  for (const k of ['major', 'minor', 'patch']) {
    if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1;
  }
  return comparePre(a.pre, b.pre);
}

const never = [{ op: '<', v: ver(0, 0, 0) }];

// lower is a partial with wildcards as 0; upper is the first version above
// every version the partial names (its wildcard part bumped).
const lower = (p) => ver(p.major, p.minor === null ? 0 : p.minor, p.patch === null ? 0 : p.patch, p.pre);
const upper = (p) => (p.minor === null ? ver(p.major + 1, 0, 0) : ver(p.major, p.minor + 1, 0));

// desugar turns one operator and partial into plain comparators.
function desugar(op, p) {
  if (p.major === null) return op === '<' || op === '>' ? never : [];
  const lo = lower(p);
  switch (op) {
    case '':
    case '=':
      return p.patch === null ? [{ op: '>=', v: lo }, { op: '<', v: upper(p) }] : [{ op: '=', v: lo }];
    case '~':
    case '~>':
      return [{ op: '>=', v: lo }, { op: '<', v: upper(p.minor === null ? p : ver(p.major, p.minor, null)) }];
    case '^': {
      let hi;
      if (p.major > 0 || p.minor === null) hi = ver(p.major + 1, 0, 0);
      else if (p.minor > 0 || p.patch === null) hi = ver(0, p.minor + 1, 0);
      else hi = ver(0, 0, p.patch + 1);
      return [{ op: '>=', v: lo }, { op: '<', v: hi }];
    }
    case '>':
      return p.patch === null ? [{ op: '>=', v: upper(p) }] : [{ op: '>', v: lo }];
    case '>=':
      return [{ op: '>=', v: lo }];
    case '<':
      return [{ op: '<', v: lo }];
    case '<=':
      return p.patch === null ? [{ op: '<', v: upper(p) }] : [{ op: '<=', v: lo }];
  }
  throw new Error('unknown operator ' + op);
}

// parseRange returns the range's sets, each a list of comparators that must
// all hold; it throws on a range it cannot read.
function parseRange(range) {
  return String(range).split('||').map((set) => {
    set = set.trim();
    const hyphen = /^(\S+)\s+-\s+(\S+)$/.exec(set);
    if (hyphen) {
      const from = parsePartial(hyphen[1]);
      const to = parsePartial(hyphen[2]);
      if (!from || !to) throw new Error('bad hyphen range');
      const lo = from.major === null ? [] : [{ op: '>=', v: lower(from) }];
      const hi = to.major === null ? [] : desugar('<=', to);
      return lo.concat(hi);
    }
    const tokens = set.replace(/(<=|>=|<|>|=|~>|~|\^)\s+/g, '$1').split(/\s+/).filter(Boolean);
    return tokens.flatMap((tok) => {
      const m = /^(<=|>=|<|>|=|~>|~|\^)?(.*)$/.exec(tok);
      const p = parsePartial(m[2]);
      if (!p) throw new Error('bad comparator ' + JSON.stringify(tok));
      return desugar(m[1] || '', p);
    });
  });
}

function holds(v, c) {
  const d = compare(v, c.v);
  switch (c.op) {
    case '<': return d < 0;
    case '<=': return d <= 0;
    case '>': return d > 0;
    case '>=': return d >= 0;
    default: return d === 0;
  }
}

function satisfies(version, range) {
  return parseRange(range).some((set) => set.every((c) => holds(version, c)));
}

function readPackage(dir) {
  const file = path.join(dir, 'package.json');
  let pkg;
  try {
    pkg = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    fail(2, 'package.json cannot be read: ' + err.message);
  }
  if (pkg === null || typeof pkg !== 'object' || Array.isArray(pkg)) fail(2, 'package.json is not a JSON object');
  return pkg;
}

function fail(code, msg) {
  process.stderr.write('**ERROR** ' + msg + '\n');
  process.exit(code);
}

const count = (o) => (o && typeof o === 'object' ? Object.keys(o).length : 0);

// webCommand is the default web process: scripts.start, run by npm start;
// else node server.js or node app.js when the file exists, else nothing.
// A scripts.start that only runs node on a file (`node server.js`, `node
// ./bin/www`), with no prestart or poststart, is that command itself: what
// npm would run, without npm's start (about a second on a busy machine) and
// its process between the platform and the app's signals. (Such an app
// sees no npm_package_* variables; `web: npm start` in a Procfile gives
// them.)
function webCommand(dir, pkg) {
  const scripts = pkg.scripts && typeof pkg.scripts === 'object' ? pkg.scripts : {};
  if (typeof scripts.start === 'string') {
    const m = /^node\s+([\w./-]+)$/.exec(scripts.start.trim());
    if (m && scripts.prestart === undefined && scripts.poststart === undefined) return 'node ' + m[1];
    return 'npm start';
  }
  for (const f of ['server.js', 'app.js']) {
    if (fs.existsSync(path.join(dir, f))) return 'node ' + f;
  }
  return '';
}

const shq = (v) => "'" + String(v).replace(/'/g, "'\\''") + "'";

// npmVersion reads the version of the npm whose bin is npmBin from npm's own
// package.json (starting npm takes about a second on a busy machine); ''
// when it cannot tell.
function npmVersion(npmBin) {
  if (!npmBin) return '';
  try {
    const root = path.dirname(path.dirname(fs.realpathSync(npmBin)));
    const pj = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    return pj.name === 'npm' && typeof pj.version === 'string' ? pj.version : '';
  } catch (err) {
    return '';
  }
}

function sha256(file) {
  try {
    return require('crypto').createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  } catch (err) {
    return '';
  }
}

// info prints node_version, engines (engines.node), engines_met (1 met or
// unset, 0 unmet), deps and devdeps (counts), web (see webCommand),
// engines_npm, npm_version, engines_npm_met (1 or 0; empty without both),
// npm_lock (npm-shrinkwrap.json or
// package-lock.json, if any) and npm_lock_sha256, yarn_lock_sha256 (of
// yarn.lock, if any) and yarn_berry (1 when yarn.lock is yarn 2+'s).
function info(dir, npmBin) {
  const pkg = readPackage(dir);
  const out = { node_version: process.version };
  const range = pkg.engines && pkg.engines.node;
  out.engines = range === undefined || range === null ? '' : String(range);
  out.engines_met = 1;
  if (out.engines !== '') {
    const v = parseVersion(process.version);
    if (!v) fail(2, 'the stack\'s node reports a version that is not semver: ' + process.version);
    try {
      out.engines_met = satisfies(v, out.engines) ? 1 : 0;
    } catch (err) {
      fail(2, 'package.json engines.node ' + JSON.stringify(range) + ' is not a version range this buildpack reads (' + err.message + '); use forms like "20.x", "^20.1.0", ">=18" or "18 || 20"');
    }
  }
  out.deps = count(pkg.dependencies) + count(pkg.optionalDependencies);
  out.devdeps = count(pkg.devDependencies);
  out.web = webCommand(dir, pkg);
  out.engines_npm = pkg.engines && pkg.engines.npm ? String(pkg.engines.npm) : '';
  out.npm_version = npmVersion(npmBin);
  out.engines_npm_met = '';
  if (out.engines_npm && out.npm_version) {
    const v = parseVersion(out.npm_version);
    try {
      out.engines_npm_met = v && satisfies(v, out.engines_npm) ? 1 : 0;
    } catch (err) {
      out.engines_npm_met = 0;
    }
  }
  out.npm_lock = '';
  for (const f of ['npm-shrinkwrap.json', 'package-lock.json']) {
    if (fs.existsSync(path.join(dir, f))) {
      out.npm_lock = f;
      break;
    }
  }
  out.npm_lock_sha256 = out.npm_lock ? sha256(path.join(dir, out.npm_lock)) : '';
  const yarnLock = path.join(dir, 'yarn.lock');
  out.yarn_lock_sha256 = fs.existsSync(yarnLock) ? sha256(yarnLock) : '';
  out.yarn_berry = 0;
  if (out.yarn_lock_sha256) {
    const head = fs.readFileSync(yarnLock, 'utf8').slice(0, 4096);
    out.yarn_berry = /^__metadata:/m.test(head) ? 1 : 0;
  }
  process.stdout.write(Object.entries(out).map(([k, v]) => k + '=' + shq(v) + '\n').join(''));
}

function main(argv) {
  const [cmd, a, b] = argv;
  if (cmd === 'satisfies') {
    const v = parseVersion(a);
    if (!v) fail(2, 'not a version: ' + a);
    let ok;
    try {
      ok = satisfies(v, b);
    } catch (err) {
      fail(2, 'not a version range: ' + JSON.stringify(b) + ' (' + err.message + ')');
    }
    process.exit(ok ? 0 : 1);
  }
  if (cmd === 'info') {
    info(a, b);
    return;
  }
  if (cmd === 'web') {
    const cmd = webCommand(a, readPackage(a));
    if (cmd) process.stdout.write(cmd + '\n');
    return;
  }
  fail(2, 'usage: pkg.js info APP_DIR [NPM_BIN] | web APP_DIR | satisfies VERSION RANGE');
}

main(process.argv.slice(2));
