package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// isTerminal reports whether v is an *os.File connected to a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// readLine reads one line from the command's input (without the newline).
// Input is read a byte at a time so nothing after the line is consumed.
func (e *env) readLine() (string, error) {
	var sb strings.Builder
	b := make([]byte, 1)
	for sb.Len() < 4096 {
		n, err := e.streams.In.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				return strings.TrimRight(sb.String(), "\r"), nil
			}
			sb.WriteByte(b[0])
			continue
		}
		if errors.Is(err, io.EOF) {
			if sb.Len() > 0 {
				return sb.String(), nil
			}
			return "", io.EOF
		}
		if err != nil {
			return "", err
		}
	}
	return sb.String(), nil
}

// prompt asks for a value on stderr and reads it from the input.
func (e *env) prompt(label string) (string, error) {
	if e.streams.In == nil {
		return "", fmt.Errorf("%s required", strings.ToLower(label))
	}
	e.errf("%s: ", label)
	s, err := e.readLine()
	if err != nil {
		e.errf("\n")
		return "", fmt.Errorf("%s required", strings.ToLower(label))
	}
	return strings.TrimSpace(s), nil
}

// promptSecret is prompt without echo when the input is a terminal.
func (e *env) promptSecret(label string) (string, error) {
	f, ok := e.streams.In.(*os.File)
	if !ok || !isTerminal(f) {
		return e.prompt(label)
	}
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return e.prompt(label)
	}
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	noEcho.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return e.prompt(label)
	}
	defer func() {
		_ = unix.IoctlSetTermios(fd, unix.TCSETS, old)
		e.errf("\n")
	}()
	e.errf("%s: ", label)
	s, err := e.readLine()
	if err != nil {
		return "", fmt.Errorf("%s required", strings.ToLower(label))
	}
	return s, nil
}

// confirm asks a yes/no question; anything but y/yes (including no input)
// is no.
func (e *env) confirm(question string) bool {
	if e.streams.In == nil {
		return false
	}
	e.errf("%s [yN]: ", question)
	s, err := e.readLine()
	if err != nil {
		// Nothing to read (a script, a pipe): say how to go ahead.
		e.errf("\nno answer on the input: taken as no (add -f to go ahead without asking)\n")
		return false
	}
	s = strings.ToLower(strings.TrimSpace(s))
	return s == "y" || s == "yes"
}
