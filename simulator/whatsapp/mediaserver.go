package wasim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.mau.fi/util/random"

	waBinary "go.mau.fi/whatsmeow/binary"
)

// MediaHost is the host name the media_conn IQ hands out; the media server's
// certificate is valid for it (and for *.whatsapp.net).
const MediaHost = "mmg.whatsapp.net"

// ErrNoMedia is returned for a direct path the media server does not hold.
var ErrNoMedia = errors.New("no such media")

// mediaServer is the simulator's media server: HTTPS with a test CA, upload
// (POST /mms/<type>/<token>?auth=…&token=…) and download (GET <direct path>).
// Blobs live in files under a temporary directory, so that big files do not
// sit in memory.
type mediaServer struct {
	dir     string
	auth    string
	maxSize int64
	pool    *x509.CertPool
	ln      net.Listener
	hsrv    *http.Server

	mu      sync.Mutex
	blobs   map[string]*blob // by direct path without the query
	next    uint64
	retries int
	silent  bool // media retry receipts go unanswered
	closed  bool

	pictures map[string][]byte // profile pictures by ID (plain, as WhatsApp serves them)
}

type blob struct {
	file    string
	size    int64
	mmsType string
	expired bool
}

func newMediaServer(maxSize int64) (*mediaServer, error) {
	dir, err := os.MkdirTemp("", "wasim-media-*")
	if err != nil {
		return nil, fmt.Errorf("failed to create media directory: %w", err)
	}
	ms := &mediaServer{dir: dir, auth: base64.RawURLEncoding.EncodeToString(random.Bytes(24)), maxSize: maxSize, blobs: map[string]*blob{}}
	cert, pool, err := newTestCA()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	ms.pool = pool
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("failed to listen for media: %w", err)
	}
	ms.ln = ln
	ms.hsrv = &http.Server{Handler: ms, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = ms.hsrv.Serve(ln) }()
	return ms, nil
}

func (ms *mediaServer) close() {
	ms.mu.Lock()
	ms.closed = true
	ms.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = ms.hsrv.Shutdown(ctx)
	_ = os.RemoveAll(ms.dir)
}

// newTestCA makes a CA and a server certificate for the WhatsApp media
// hosts signed by it.
func newTestCA() (tls.Certificate, *x509.CertPool, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wasim test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * 365 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("failed to make test CA: %w", err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: MediaHost},
		DNSNames:  []string{MediaHost, "*.whatsapp.net", "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * 365 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("failed to make media certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key}, pool, nil
}

// MediaHTTPClient returns the HTTP client a whatsmeow client uses for media
// (whatsmeow.Client.SetMediaHTTPClient): it dials the simulator's HTTPS
// media server whatever host a URL names, and trusts the simulator's test CA
// (and nothing else).
func (s *Server) MediaHTTPClient() *http.Client {
	addr := s.media.ln.Addr().String()
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig:     &tls.Config{RootCAs: s.media.pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}}
}

// MediaCAPool is the pool holding the media server's test CA.
func (s *Server) MediaCAPool() *x509.CertPool { return s.media.pool }

// mediaConnNode answers the media_conn IQ.
func (ms *mediaServer) mediaConnNode() waBinary.Node {
	return waBinary.Node{Tag: "media_conn", Attrs: waBinary.Attrs{
		"auth": ms.auth, "ttl": 300, "auth_ttl": 21600, "max_buckets": 12,
	}, Content: []waBinary.Node{{Tag: "host", Attrs: waBinary.Attrs{"hostname": MediaHost}}}}
}

func (ms *mediaServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/mms/"):
		ms.serveUpload(w, r)
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && strings.HasPrefix(r.URL.Path, "/v/"):
		ms.serveDownload(w, r)
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/pp/"):
		ms.servePicture(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (ms *mediaServer) serveUpload(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/mms/"), "/")
	q := r.URL.Query()
	if len(parts) != 2 || parts[1] != q.Get("token") {
		http.Error(w, "bad upload path", http.StatusBadRequest)
		return
	}
	if q.Get("auth") != ms.auth {
		http.Error(w, "bad auth", http.StatusUnauthorized)
		return
	}
	want, err := base64.URLEncoding.DecodeString(q.Get("token"))
	if err != nil || len(want) != sha256.Size {
		http.Error(w, "bad token", http.StatusBadRequest)
		return
	}
	if r.ContentLength > ms.maxSize {
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
		return
	}
	path, err := ms.store(http.MaxBytesReader(w, r.Body, ms.maxSize), parts[0], want)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"url":         "https://" + MediaHost + path + "&mms3=true",
		"direct_path": path,
		"handle":      hex.EncodeToString(random.Bytes(8)),
		"object_id":   hex.EncodeToString(random.Bytes(8)),
	})
}

// store writes an uploaded (encrypted) blob to a file and returns its new
// direct path; when wantSHA is given, the blob's SHA-256 must match it.
func (ms *mediaServer) store(body io.Reader, mmsType string, wantSHA []byte) (string, error) {
	f, err := os.CreateTemp(ms.dir, "blob-*")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && wantSHA != nil && !bytes.Equal(h.Sum(nil), wantSHA) {
		err = errors.New("upload does not match its token")
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return "", err
	}
	return ms.add(&blob{file: f.Name(), size: n, mmsType: mmsType}), nil
}

// add files b under a new direct path in WhatsApp's shape.
func (ms *mediaServer) add(b *blob) string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.next++
	p := fmt.Sprintf("/v/t62.7118-24/%d_%s_n.enc", 10000000+ms.next, hex.EncodeToString(random.Bytes(6)))
	ms.blobs[p] = b
	return fmt.Sprintf("%s?ccb=11-4&oh=%s&oe=%X&_nc_sid=5e03e0", p, hex.EncodeToString(random.Bytes(8)), time.Now().Add(14*24*time.Hour).Unix())
}

func pathOf(directPath string) string {
	p, _, _ := strings.Cut(directPath, "?")
	return p
}

func (ms *mediaServer) lookup(directPath string) (*blob, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	b := ms.blobs[pathOf(directPath)]
	if b == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoMedia, directPath)
	}
	return b, nil
}

func (ms *mediaServer) serveDownload(w http.ResponseWriter, r *http.Request) {
	ms.mu.Lock()
	b := ms.blobs[r.URL.Path]
	expired := b != nil && b.expired
	ms.mu.Unlock()
	switch {
	case b == nil:
		http.NotFound(w, r)
		return
	case expired:
		// What WhatsApp answers for media past its retention.
		http.Error(w, "gone", http.StatusGone)
		return
	}
	f, err := os.Open(b.file)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer func() { _ = f.Close() }()
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, filepath.Base(b.file), time.Time{}, f)
}

// ExpireMedia makes the media server answer 410 Gone for a direct path, as
// WhatsApp does for media past its retention: a client then asks the
// sender's phone to upload it again with a media retry receipt.
func (s *Server) ExpireMedia(directPath string) error {
	s.media.mu.Lock()
	defer s.media.mu.Unlock()
	b := s.media.blobs[pathOf(directPath)]
	if b == nil {
		return fmt.Errorf("%w: %s", ErrNoMedia, directPath)
	}
	b.expired = true
	return nil
}

// DeleteMedia removes a file from the media server (downloads answer 404)
// and from the phones: a media retry receipt for it is answered with an
// error, as a phone that no longer has the file answers.
func (s *Server) DeleteMedia(directPath string) error {
	s.media.mu.Lock()
	defer s.media.mu.Unlock()
	p := pathOf(directPath)
	b := s.media.blobs[p]
	if b == nil {
		return fmt.Errorf("%w: %s", ErrNoMedia, directPath)
	}
	delete(s.media.blobs, p)
	return nil
}

// IgnoreMediaRetries makes the simulated phones leave media retry receipts
// unanswered (a phone that is offline), or answer them again.
func (s *Server) IgnoreMediaRetries(ignore bool) {
	s.media.mu.Lock()
	s.media.silent = ignore
	s.media.mu.Unlock()
}

// reupload files the blob at directPath again under a new, live direct
// path (what a phone does when it answers a media retry receipt).
func (ms *mediaServer) reupload(directPath string) (string, error) {
	b, err := ms.lookup(directPath)
	if err != nil {
		return "", err
	}
	ms.mu.Lock()
	cp := *b
	ms.mu.Unlock()
	cp.expired = false
	return ms.add(&cp), nil
}

// MediaUploads returns how many blobs the media server holds (uploads and
// re-uploads).
func (s *Server) MediaUploads() int {
	s.media.mu.Lock()
	defer s.media.mu.Unlock()
	return len(s.media.blobs)
}
