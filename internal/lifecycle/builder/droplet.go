package builder

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/pandoplatform/pando"
	"github.com/pandoplatform/pando/internal/atomicfile"
)

// Droplet entries are owned by vcap (uid/gid 2000), the user apps run as.
const (
	vcapID   = 2000
	vcapName = "vcap"
)

func (s *stager) writeOutputs(res pando.StagingResult) error {
	fail := func(err error) error { return &ExitError{Code: ExitFailed, Phase: "droplet", Err: err} }
	info, err := json.Marshal(struct {
		DetectedBuildpack string `json:"detected_buildpack"`
		StartCommand      string `json:"start_command"`
	}{res.DetectedBuildpack, res.StartCommand})
	if err != nil {
		return fail(err)
	}
	size, err := writeDroplet(s.cfg.OutputDroplet, []dropletDir{
		{name: "app", src: s.cfg.BuildDir},
		{name: "deps", src: s.cfg.DepsDir},
		{name: "profile.d", src: s.cfg.ProfileDir},
		{name: "tmp"},
		{name: "logs"},
	}, append(info, '\n'))
	if err != nil {
		return fail(err)
	}
	s.progress("Droplet written (%s)", humanSize(size))
	if res.ProcessTypes == nil {
		res.ProcessTypes = map[string]string{}
	}
	meta, err := json.Marshal(res)
	if err != nil {
		return fail(err)
	}
	if err := atomicfile.WriteFile(s.cfg.OutputMetadata, meta, 0o644); err != nil {
		return fail(fmt.Errorf("write metadata: %w", err))
	}
	return nil
}

type dropletDir struct {
	name string // top-level name in the droplet
	src  string // directory whose contents go there; "" for an empty dir
}

// writeDroplet writes the droplet tgz atomically and returns its size.
func writeDroplet(dst string, dirs []dropletDir, stagingInfo []byte) (int64, error) {
	err := atomicfile.Write(dst, 0o644, func(f io.Writer) error {
		w := bufio.NewWriterSize(f, 256<<10) // tar headers are small writes
		// Speed over size: droplets travel over fast local links, and the
		// default level costs ~3x the time for ~10% smaller binaries.
		gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
		if err != nil {
			return err
		}
		tw := tar.NewWriter(gz)
		now := time.Now()
		if err := tw.WriteHeader(dirHeader("./", 0o755, now)); err != nil {
			return err
		}
		for _, d := range dirs {
			if err := addTree(tw, d, now); err != nil {
				return err
			}
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: "./staging_info.yml", Mode: 0o644, Size: int64(len(stagingInfo)),
			ModTime: now, Uid: vcapID, Gid: vcapID, Uname: vcapName, Gname: vcapName, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(stagingInfo); err != nil {
			return err
		}
		if err := tw.Close(); err != nil {
			return err
		}
		if err := gz.Close(); err != nil {
			return err
		}
		return w.Flush()
	})
	if err != nil {
		return 0, fmt.Errorf("write droplet: %w", err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func dirHeader(name string, mode int64, mtime time.Time) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: mtime,
		Uid: vcapID, Gid: vcapID, Uname: vcapName, Gname: vcapName, Format: tar.FormatPAX}
}

// addTree archives d.src as ./<d.name>. Symlinks are stored as links, never
// followed, so nothing outside the tree gets into the droplet; modes are kept
// minus setuid/setgid; sockets, devices and pipes are skipped.
func addTree(tw *tar.Writer, d dropletDir, now time.Time) error {
	top := "./" + d.name
	if d.src == "" {
		return tw.WriteHeader(dirHeader(top+"/", 0o755, now))
	}
	if _, err := os.Lstat(d.src); os.IsNotExist(err) {
		return tw.WriteHeader(dirHeader(top+"/", 0o755, now))
	}
	return filepath.WalkDir(d.src, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(d.src, p)
		if err != nil {
			return err
		}
		name := top
		if rel != "." {
			name = top + "/" + filepath.ToSlash(rel)
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		mode := int64(fi.Mode().Perm())
		if fi.Mode()&fs.ModeSticky != 0 {
			mode |= 0o1000
		}
		hdr := &tar.Header{Name: name, Mode: mode, ModTime: fi.ModTime(), Uid: vcapID, Gid: vcapID,
			Uname: vcapName, Gname: vcapName, Format: tar.FormatPAX}
		switch {
		case fi.IsDir():
			hdr.Typeflag = tar.TypeDir
			hdr.Name += "/"
			if rel == "." {
				hdr.Mode = 0o755
			}
			return tw.WriteHeader(hdr)
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = target
			hdr.Mode = 0o777
			return tw.WriteHeader(hdr)
		case fi.Mode().IsRegular():
			hdr.Typeflag = tar.TypeReg
			hdr.Size = fi.Size()
			return addFile(tw, hdr, p)
		default:
			return nil
		}
	})
}

func addFile(tw *tar.Writer, hdr *tar.Header, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	// Copy exactly the size in the header: a file growing meanwhile must not
	// corrupt the archive, one shrinking is an error.
	if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
		return fmt.Errorf("archive %s: %w", p, err)
	}
	return nil
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}
