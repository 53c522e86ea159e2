package appservice

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/bridgev2/matrix"

	"github.com/passerelle/passerelle/internal/hscaps"
)

// hsProbeTimeout bounds each request of the capability detection.
const hsProbeTimeout = 5 * time.Second

// homeserverCaps detects, once at start, what the homeserver can do for the
// gateway (internal/hscaps decides), logs it and keeps it for the metrics
// listener's /homeserver. The spec versions are the ones bridgev2 fetched
// when it connected; the media config is read again because bridgev2 keeps
// its copy unsynchronised; the server's name is asked only of the public
// federation version endpoint, without a token.
type homeserverCaps struct {
	mc  *matrix.Connector
	pup *puppeting

	mu       sync.Mutex
	in       hscaps.Input // guarded by mu
	detected bool         // guarded by mu
}

func newHomeserverCaps(mc *matrix.Connector, pup *puppeting) *homeserverCaps {
	return &homeserverCaps{mc: mc, pup: pup}
}

// detect reads what it needs from the homeserver and logs the report. Call
// it after bridgev2's Matrix connector started (its SpecVersions are set).
func (h *homeserverCaps) detect(ctx context.Context) hscaps.Report {
	log := zerolog.Ctx(ctx)
	in := hscaps.Input{}
	if h.mc.SpecVersions != nil {
		v := *h.mc.SpecVersions
		in.Versions = &v
	}
	if h.mc.Config != nil {
		in.EncryptionAppservice = h.mc.Config.Encryption.Appservice
		in.MSC4190 = h.mc.Config.Encryption.MSC4190
	}
	if h.mc.Bot != nil {
		size, err := mediaUploadSize(ctx, h.mc.Bot.Client)
		if err != nil {
			log.Warn().Err(err).Msg("Failed to read the homeserver's media config")
		} else {
			in.UploadSize, in.UploadSizeKnown = size, true
		}
		sw, err := serverSoftware(ctx, h.mc.Bot.Client.Client, h.mc.Bot.HomeserverURL)
		if err != nil {
			log.Debug().Err(err).Msg("The homeserver does not tell its name")
		} else {
			in.Server = sw
		}
	}
	h.mu.Lock()
	h.in, h.detected = in, true
	h.mu.Unlock()
	r, _ := h.report()
	logReport(log, r)
	return r
}

// report is the decision with what was seen since start (ephemeral pushes).
func (h *homeserverCaps) report() (hscaps.Report, bool) {
	h.mu.Lock()
	in, ok := h.in, h.detected
	h.mu.Unlock()
	if !ok {
		return hscaps.Report{}, false
	}
	if h.pup != nil {
		in.DoublePuppet = h.pup.cfg.Enabled
		in.Ephemeral = h.pup.cfg.ephemeral()
		in.EphemeralSeen = h.pup.pushed.Load()
	}
	return hscaps.Decide(in), true
}

// reportJSON is the report for the metrics listener.
func (h *homeserverCaps) reportJSON() (any, bool) { return h.report() }

func logReport(log *zerolog.Logger, r hscaps.Report) {
	log.Info().
		Str("server_name", r.Server.Name).
		Str("server_version", r.Server.Version).
		Strs("spec_versions", r.Versions).
		Str("latest_spec_version", r.Latest).
		Strs("unstable_features", r.Flags()).
		Int64("upload_size", r.UploadSize).
		Msg("Homeserver capabilities")
	for _, row := range r.NotOK() {
		var msg string
		switch row.Status {
		case hscaps.Degraded:
			msg = "Feature degraded by the homeserver"
		case hscaps.Limited:
			msg = "Feature limited by the homeserver"
		default:
			msg = "Feature on a fallback for this homeserver"
		}
		log.Info().
			Str("capability", row.Capability).
			Str("detected", row.Detected).
			Str("feature", row.Feature).
			Str("status", string(row.Status)).
			Str("effect", row.Effect).
			Msg(msg)
	}
}

// mediaUploadSize reads m.upload.size: the authenticated media config
// (v1.11), else the legacy one. 0 means the homeserver does not say.
func mediaUploadSize(ctx context.Context, cli *mautrix.Client) (int64, error) {
	var resp mautrix.RespMediaConfig
	get := func(url string) error {
		ctx, cancel := context.WithTimeout(ctx, hsProbeTimeout)
		defer cancel()
		_, err := cli.MakeFullRequest(ctx, mautrix.FullRequest{Method: http.MethodGet, URL: url, ResponseJSON: &resp, MaxAttempts: 1})
		return err
	}
	err := get(cli.BuildClientURL("v1", "media", "config"))
	if errors.Is(err, mautrix.MUnrecognized) || errors.Is(err, mautrix.MNotFound) || isHTTPStatus(err, http.StatusNotFound) {
		err = get(cli.BuildURL(mautrix.MediaURLPath{"v3", "config"}))
	}
	if err != nil {
		return 0, fmt.Errorf("failed to get the media config: %w", err)
	}
	return resp.UploadSize, nil
}

func isHTTPStatus(err error, code int) bool {
	var httpErr mautrix.HTTPError
	return errors.As(err, &httpErr) && httpErr.Response != nil && httpErr.Response.StatusCode == code
}

// maxVersionBody bounds the federation version answer read.
const maxVersionBody = 64 << 10

// serverSoftware asks GET /_matrix/federation/v1/version (public, no
// token) for the homeserver's name and version. Homeservers that serve
// federation elsewhere, or not at all, do not answer: the caller goes on
// without a name.
func serverSoftware(ctx context.Context, hc *http.Client, base *url.URL) (hscaps.Software, error) {
	if base == nil {
		return hscaps.Software{}, errors.New("no homeserver address")
	}
	ctx, cancel := context.WithTimeout(ctx, hsProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.JoinPath("_matrix", "federation", "v1", "version").String(), nil)
	if err != nil {
		return hscaps.Software{}, err
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return hscaps.Software{}, fmt.Errorf("failed to ask the federation version: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return hscaps.Software{}, fmt.Errorf("federation version answered HTTP %d", resp.StatusCode)
	}
	var body struct {
		Server hscaps.Software `json:"server"`
	}
	if err = json.NewDecoder(io.LimitReader(resp.Body, maxVersionBody)).Decode(&body); err != nil {
		return hscaps.Software{}, fmt.Errorf("failed to read the federation version: %w", err)
	}
	return body.Server, nil
}
