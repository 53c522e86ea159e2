package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/passerelle/passerelle/config"
)

// healthcheckTimeout bounds one `passerelle --healthcheck`: a container
// runtime runs it every interval and kills it after its own timeout.
const healthcheckTimeout = 5 * time.Second

func wantsHealthcheck(args []string) bool {
	for _, a := range args {
		if a == "--healthcheck" {
			return true
		}
	}
	return false
}

// healthcheck asks the running gateway whether it is ready, for a container
// HEALTHCHECK or a supervisor: it reads the appservice listener from the
// config (-c, default config.yaml) and GETs bridgev2's /_matrix/mau/ready on
// it, which answers 200 once the gateway has opened its database, reached
// the homeserver and started, and 500 before and while stopping. It returns
// the process exit code: 0 ready, 1 not.
func healthcheck(ctx context.Context, args []string, out io.Writer) int {
	path := "config.yaml"
	for i, a := range args {
		switch {
		case (a == "-c" || a == "--config") && i+1 < len(args):
			path = args[i+1]
		case strings.HasPrefix(a, "--config="):
			path = strings.TrimPrefix(a, "--config=")
		}
	}
	url, err := readyURL(path)
	if err != nil {
		fmt.Fprintln(out, "unhealthy:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintln(out, "unhealthy:", err)
		return 1
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(out, "unhealthy: the gateway does not answer:", err)
		return 1
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(out, "unhealthy: %s answered %s (not started, or stopping)\n", url, resp.Status)
		return 1
	}
	fmt.Fprintln(out, "ready:", url)
	return 0
}

// readyURL is bridgev2's readiness endpoint on the appservice listener of
// the config at path. A wildcard listen address is reached on loopback.
func readyURL(path string) (string, error) {
	doc, err := config.Load(path)
	if err != nil {
		return "", err
	}
	host := doc.GetString("appservice.hostname")
	var port int
	if err = doc.Get("appservice.port", &port); err != nil || port <= 0 || port > 65535 {
		return "", fmt.Errorf("%s: no valid appservice.port", path)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	if strings.HasPrefix(host, "unix:") {
		return "", fmt.Errorf("%s: appservice.hostname is a unix socket; --healthcheck needs a TCP listener", path)
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/_matrix/mau/ready", nil
}
