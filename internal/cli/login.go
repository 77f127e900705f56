package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pandoplatform/pando/internal/cli/api"
)

func (e *env) apiCmd() *cobra.Command {
	var skipSSL bool
	cmd := &cobra.Command{
		Use:   "endpoint [URL]",
		Short: "Set or show the API endpoint",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			if len(args) == 0 {
				target := cfg.Target
				if target == "" {
					target = e.localAPI + " (default: local server)"
				}
				e.out("API endpoint:   %s\n", target)
				if cfg.APIVersion != "" {
					e.out("API version:    %s\n", cfg.APIVersion)
				}
				return nil
			}
			target, err := normalizeAPI(args[0])
			if err != nil {
				return err
			}
			c, err := api.New(api.Config{URL: target, HTTPClient: e.clientFor(&Config{SkipSSLValidation: skipSSL})})
			if err != nil {
				return err
			}
			e.out("Setting API endpoint to %s...\n", target)
			root, err := c.Root(ctx)
			if err != nil {
				return err
			}
			if cfg.Target != target {
				*cfg = Config{}
			}
			cfg.Target, cfg.APIVersion, cfg.SkipSSLValidation = target, root.Version(), skipSSL
			if err := e.saveConfig(cfg); err != nil {
				return err
			}
			e.out("OK\n\nAPI endpoint:   %s\nAPI version:    %s\n", target, root.Version())
			if cfg.AccessToken == "" {
				e.out("Not logged in. Use 'pando login' to log in.\n")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&skipSSL, "skip-ssl-validation", false, "do not check the server's certificate (a self-signed one)")
	return cmd
}

func (e *env) loginCmd() *cobra.Command {
	var apiURL, user, password, org, space string
	var skipSSL bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to a Pando (or Cloud Foundry) API",
		Long: "Log in and target an org and space. Without -a it uses the configured API,\n" +
			"or the local server at " + LocalAPI + ".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.login(cmdContext(cmd), apiURL, user, password, org, space, skipSSL)
		},
	}
	cmd.Flags().StringVarP(&apiURL, "api", "a", "", "API endpoint URL")
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password")
	cmd.Flags().StringVarP(&org, "org", "o", "", "org to target")
	cmd.Flags().StringVarP(&space, "space", "s", "", "space to target")
	cmd.Flags().BoolVar(&skipSSL, "skip-ssl-validation", false, "do not check the server's certificate (a self-signed one)")
	return cmd
}

func (e *env) login(ctx context.Context, apiURL, user, password, org, space string, skipSSL bool) error {
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	target := cfg.Target
	if apiURL != "" {
		if target, err = normalizeAPI(apiURL); err != nil {
			return err
		}
	}
	if target == "" {
		target = e.localAPI
	}
	if target != cfg.Target {
		*cfg = Config{Target: target}
	}
	if skipSSL {
		cfg.SkipSSLValidation = true
	}
	c, err := api.New(api.Config{URL: target, HTTPClient: e.clientFor(cfg), Now: e.now, PollMin: e.pollMin, PollMax: e.pollMax})
	if err != nil {
		return err
	}
	e.out("API endpoint: %s\n\n", target)
	root, err := c.Root(ctx)
	if err != nil {
		return err
	}
	if user == "" {
		if user, err = e.prompt("Username"); err != nil {
			return fmt.Errorf("%w (use -u)", err)
		}
	}
	if password == "" {
		if password, err = e.promptSecret("Password"); err != nil {
			return fmt.Errorf("%w (use -p)", err)
		}
	}
	e.out("Authenticating...\n")
	t, err := c.PasswordGrant(ctx, user, password)
	if api.IsStatus(err, http.StatusUnauthorized) {
		// UAA's "Bad credentials (unauthorized)" alone reads like a
		// server fault; say what the user can change, and what else the
		// server said (a locked account) rather than the same twice.
		if strings.Contains(err.Error(), "Bad credentials") {
			return fmt.Errorf("wrong user name or password for %s at %s", user, target)
		}
		return fmt.Errorf("%w: wrong user name or password for %s at %s", err, user, target)
	}
	if err != nil {
		return err
	}
	cfg.Target, cfg.APIVersion = target, root.Version()
	cfg.AccessToken, cfg.RefreshToken = t.Access, t.Refresh
	if err := e.saveConfig(cfg); err != nil {
		return err
	}
	e.out("OK\n\n")
	s := &session{env: e, cfg: cfg, c: c}
	if err := s.autoTarget(ctx, org, space); err != nil {
		// Logged in all the same; say what is missing.
		e.errf("warning: %v\n", err)
	}
	s.printTarget()
	return nil
}

func (e *env) logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the session's tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			cfg.AccessToken, cfg.RefreshToken = "", ""
			cfg.OrgGUID, cfg.OrgName, cfg.SpaceGUID, cfg.SpaceName = "", "", "", ""
			if err := e.saveConfig(cfg); err != nil {
				return err
			}
			e.out("Logged out.\n")
			return nil
		},
	}
}

func (e *env) targetCmd() *cobra.Command {
	var org, space string
	cmd := &cobra.Command{
		Use:   "target",
		Short: "Show or set the targeted org and space",
		Long: "Show or set the targeted org and space. Push, apps and the other app verbs work in the\n" +
			"targeted space; the choice is saved in the CLI config ($PANDO_HOME/config.json).",
		Example: "  pando target -o shop -s dev\n  pando target -s staging    # another space of the targeted org\n  pando target",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			s, err := e.newSession(ctx, false)
			if err != nil {
				return err
			}
			if org != "" || space != "" {
				if org == "" {
					org = s.cfg.OrgName
				}
				err := s.autoTarget(ctx, org, space)
				if errors.Is(err, errSeveralSpaces) && space == "" {
					// The org alone is targeted, as cf does.
					s.printTarget()
					return nil
				}
				if err != nil {
					return err
				}
			} else if s.cfg.SpaceGUID == "" {
				if err := s.autoTarget(ctx, "", ""); err != nil {
					e.errf("warning: %v\n", err)
				}
			}
			if s.cfg.APIVersion == "" {
				if root, err := s.c.Root(ctx); err == nil {
					s.cfg.APIVersion = root.Version()
					_ = s.save()
				}
			}
			s.printTarget()
			return nil
		},
	}
	cmd.Flags().StringVarP(&org, "org", "o", "", "org to target")
	cmd.Flags().StringVarP(&space, "space", "s", "", "space to target")
	return cmd
}

func (s *session) printTarget() {
	s.out("API endpoint:   %s\n", s.c.URL())
	if s.cfg.APIVersion != "" {
		s.out("API version:    %s\n", s.cfg.APIVersion)
	}
	s.out("user:           %s\n", s.user())
	if s.cfg.OrgName != "" {
		s.out("org:            %s\n", s.cfg.OrgName)
	} else {
		s.out("org:            (none: use 'pando target -o ORG')\n")
	}
	if s.cfg.SpaceName != "" {
		s.out("space:          %s\n", s.cfg.SpaceName)
	} else {
		s.out("space:          (none: use 'pando target -s SPACE')\n")
	}
}
