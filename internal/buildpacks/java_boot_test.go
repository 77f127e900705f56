package buildpacks_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A Spring-Boot-style fat jar, built here without Spring: the app's
// classes in BOOT-INF/classes, its libraries as jars in BOOT-INF/lib
// (stored, not compressed, as Boot stores them), and at the root a
// launcher (the Main-Class) that loads them and runs the Start-Class,
// from the jar itself or from the jar unpacked (as `cf push -p app.jar`
// uploads it), as Boot's JarLauncher does.
const bootLauncher = `package org.example.boot;

import java.io.File;
import java.io.InputStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.jar.Manifest;

public class Launcher {
	public static void main(String[] args) throws Exception {
		File root = new File(Launcher.class.getProtectionDomain().getCodeSource().getLocation().toURI());
		List<URL> urls = new ArrayList<>();
		Manifest mf;
		if (root.isDirectory()) {
			try (InputStream in = Files.newInputStream(root.toPath().resolve("META-INF/MANIFEST.MF"))) {
				mf = new Manifest(in);
			}
			urls.add(new File(root, "BOOT-INF/classes/").toURI().toURL());
			File[] libs = new File(root, "BOOT-INF/lib").listFiles();
			for (File lib : libs == null ? new File[0] : libs) urls.add(lib.toURI().toURL());
		} else {
			Path tmp = Files.createTempDirectory("boot-lib");
			try (JarFile jar = new JarFile(root)) {
				mf = jar.getManifest();
				urls.add(new URL("jar:" + root.toURI() + "!/BOOT-INF/classes/"));
				for (Enumeration<JarEntry> e = jar.entries(); e.hasMoreElements();) {
					JarEntry en = e.nextElement();
					if (en.getName().startsWith("BOOT-INF/lib/") && en.getName().endsWith(".jar")) {
						Path p = tmp.resolve(en.getName().substring("BOOT-INF/lib/".length()));
						try (InputStream in = jar.getInputStream(en)) {
							Files.copy(in, p, StandardCopyOption.REPLACE_EXISTING);
						}
						urls.add(p.toUri().toURL());
					}
				}
			}
		}
		String start = mf.getMainAttributes().getValue("Start-Class");
		ClassLoader cl = new URLClassLoader(urls.toArray(new URL[0]), ClassLoader.getPlatformClassLoader());
		Thread.currentThread().setContextClassLoader(cl);
		cl.loadClass(start).getMethod("main", String[].class).invoke(null, (Object) args);
	}
}
`

const bootGreeting = `package com.example.lib;

public class Greeting {
	public static String hello() { return "hello from a BOOT-INF/lib jar"; }
}
`

const bootApp = `package com.example;

import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;

public class App {
	public static void main(String[] args) throws Exception {
		HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", Integer.parseInt(System.getenv("PORT"))), 0);
		s.createContext("/", x -> {
			byte[] b = (com.example.lib.Greeting.hello() + " heap " + Runtime.getRuntime().maxMemory()).getBytes();
			x.sendResponseHeaders(200, b.length);
			x.getResponseBody().write(b);
			x.close();
		});
		s.start();
	}
}
`

// bootJar builds the fat jar and returns its bytes.
func bootJar(t *testing.T) []byte {
	t.Helper()
	_, javac, jar := javaTools(t)
	dir := t.TempDir()
	files := map[string]string{
		"lib/com/example/lib/Greeting.java":   bootGreeting,
		"app/com/example/App.java":            bootApp,
		"boot/org/example/boot/Launcher.java": bootLauncher,
		"manifest.txt":                        "Main-Class: org.example.boot.Launcher\nStart-Class: com.example.App\n",
	}
	writeFiles(t, dir, files)
	must(t, os.MkdirAll(filepath.Join(dir, "fat", "BOOT-INF", "lib"), 0o755))
	for _, args := range [][]string{
		{javac, "-d", "out/lib", "lib/com/example/lib/Greeting.java"},
		{jar, "--create", "--file", "fat/BOOT-INF/lib/greeting-1.0.jar", "-C", "out/lib", "."},
		{javac, "-cp", "out/lib", "-d", "fat/BOOT-INF/classes", "app/com/example/App.java"},
		{javac, "-d", "fat", "boot/org/example/boot/Launcher.java"},
		{jar, "--create", "--no-compress", "--file", "app.jar", "--manifest", "manifest.txt", "-C", "fat", "."},
	} {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "app.jar"))
	must(t, err)
	return b
}

func TestJava_springBootStyleFatJarStartsPackedAndUnpacked(t *testing.T) {
	t.Parallel()
	javaFeature(t)
	jar := bootJar(t)
	cases := []struct {
		name, start, main string
		put               func(dir string)
	}{
		{"unpacked, as cf push -p app.jar uploads it", "$HOME/.java-buildpack/start -cp $HOME/. org.example.boot.Launcher",
			"-----> Java Main: org.example.boot.Launcher\n", func(dir string) { unzip(t, jar, dir) }},
		{"the jar itself", "$HOME/.java-buildpack/start -jar $HOME/app.jar",
			"-----> Java Main: org.example.boot.Launcher (from app.jar)\n", func(dir string) {
				must(t, os.WriteFile(filepath.Join(dir, "app.jar"), jar, 0o644))
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStage(t, nil)
			c.put(s.cfg.BuildDir)
			s.cfg.Env = append(s.cfg.Env, "MEMORY_LIMIT=256m")
			res, err := s.build(t)
			out := s.out.String()
			if err != nil {
				t.Fatalf("Build: %v\n%s", err, out)
			}
			if res.BuildpackName != "java_buildpack" || res.StartCommand != c.start || !strings.Contains(out, c.main) {
				t.Fatalf("result %+v, want the java_buildpack starting %q\n%s", res, c.start, out)
			}
			body := serve(t, s, "MEMORY_LIMIT=256m "+res.StartCommand)
			if !strings.HasPrefix(body, "hello from a BOOT-INF/lib jar heap ") {
				t.Fatalf("GET / = %q", body)
			}
			// The launcher's JVM is sized from the limit like any other.
			if heap := heapOf(t, body); heap > 120<<20 || heap < 100<<20 {
				t.Fatalf("max heap %d MiB at MEMORY_LIMIT=256m, want about 119 MiB", heap>>20)
			}
		})
	}
}
