package s3

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7/pkg/credentials"
)

// roleTimeout bounds one request to the instance metadata service or a
// container credentials endpoint (they answer in milliseconds where they
// exist; elsewhere the address may swallow packets).
const roleTimeout = 3 * time.Second

// source is one place credentials may come from.
type source struct {
	where string // for the error when no place has them
	p     credentials.Provider
	skip  string // why the place is not tried ("": it is)
}

// credentialChain tries the places AWS SDKs look for credentials, in
// their order: the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN); the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE
// or "default"); a role: web identity (AWS_WEB_IDENTITY_TOKEN_FILE), the
// container credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI
// or _FULL_URI) or the EC2 instance role (the metadata service,
// AWS_EC2_METADATA_SERVICE_ENDPOINT or 169.254.169.254, unless
// AWS_EC2_METADATA_DISABLED=true). The first place that has them is used
// until its credentials expire; when none has them, the error names every
// place tried and why it failed. getenv reads the environment (the
// role's own variables are read by minio-go from the process's).
func credentialChain(getenv func(string) string, client *http.Client) *chain {
	env := source{where: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"}
	if id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"); id != "" && secret != "" {
		env.p = &credentials.Static{Value: credentials.Value{AccessKeyID: id, SecretAccessKey: secret,
			SessionToken: getenv("AWS_SESSION_TOKEN"), SignerType: credentials.SignatureV4}}
	} else {
		env.skip = "not set"
	}

	profile := getenv("AWS_PROFILE")
	if profile == "" {
		profile = "default"
	}
	file := source{}
	path := getenv("AWS_SHARED_CREDENTIALS_FILE")
	if path == "" {
		if home := getenv("HOME"); home != "" {
			path = filepath.Join(home, ".aws", "credentials")
		}
	}
	if path == "" {
		file.where, file.skip = "~/.aws/credentials", "HOME is not set"
	} else {
		file.where = fmt.Sprintf("the shared credentials file %s (profile %s)", path, profile)
		file.p = &credentials.FileAWSCredentials{Filename: path, Profile: profile}
	}

	role := source{where: "a web identity, container or EC2 instance role"}
	metadata := getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT")
	switch {
	case getenv("AWS_WEB_IDENTITY_TOKEN_FILE") != "":
		role.where = "the web identity role (AWS_WEB_IDENTITY_TOKEN_FILE)"
	case getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != "" || getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI") != "":
		role.where = "the container credentials endpoint (AWS_CONTAINER_CREDENTIALS_*)"
		metadata = "" // the variables name the endpoint
	case strings.EqualFold(getenv("AWS_EC2_METADATA_DISABLED"), "true"):
		role.where, role.skip = "the EC2 instance role", "AWS_EC2_METADATA_DISABLED is set"
	default:
		where := metadata
		if where == "" {
			where = credentials.DefaultIAMRoleEndpoint
		}
		role.where = "the EC2 instance role at " + where
	}
	if role.skip == "" {
		role.p = &credentials.IAM{Client: client, Endpoint: metadata}
	}
	return &chain{sources: []source{env, file, role}}
}

// chain is a credentials.Provider over sources, first to last.
type chain struct {
	sources []source

	mu   sync.Mutex
	curr credentials.Provider
}

func (c *chain) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	var tried []string
	for _, s := range c.sources {
		if s.skip != "" {
			tried = append(tried, s.where+" ("+s.skip+")")
			continue
		}
		v, err := s.p.RetrieveWithCredContext(cc)
		if err == nil && (v.AccessKeyID == "" || v.SecretAccessKey == "") {
			err = errors.New("no keys there")
		}
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", s.where, err))
			continue
		}
		c.mu.Lock()
		c.curr = s.p
		c.mu.Unlock()
		return v, nil
	}
	return credentials.Value{}, fmt.Errorf("no credentials: tried %s", strings.Join(tried, "; "))
}

func (c *chain) Retrieve() (credentials.Value, error) { return c.RetrieveWithCredContext(nil) }

// IsExpired is the current source's: a chain that found nothing yet, or
// whose source's credentials expired, looks again from the first.
func (c *chain) IsExpired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.curr == nil || c.curr.IsExpired()
}
