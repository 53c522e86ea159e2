// Command tgsim runs the fake Telegram data centre on its own, for the local
// demo stack: it serves MTProto on -addr and the control API on -control.
//
//	tgsim -addr 127.0.0.1:4430 -control 127.0.0.1:4431 -key tgsim-key.pem -code 12345 \
//	    -account '+15550001 Alice' -account '+15550002 Bob @bob' -autoreply '+15550002'
package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	tgsim "github.com/passerelle/passerelle/simulator/telegram"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tgsim:", err)
		os.Exit(1)
	}
}

func run() error {
	var accounts, autoReply listFlag
	addr := flag.String("addr", "127.0.0.1:4430", "MTProto listen address (loopback)")
	control := flag.String("control", "127.0.0.1:4431", "control HTTP listen address (loopback); empty disables it")
	keyPath := flag.String("key", "", "PEM file with the server RSA private key; created if missing; empty: a new key each run")
	pubOut := flag.String("pubkey-out", "", "write the public key PEM (for the gateway's config) to this file")
	dc := flag.Int("dc", 2, "DC ID")
	code := flag.String("code", "", "fixed login code (default: random, see GET /accounts)")
	flag.Var(&accounts, "account", `account to create: "+PHONE First [Last] [@username] [password=PW]" (repeatable)`)
	flag.Var(&autoReply, "autoreply", "phone of an account that echoes what it is sent (repeatable)")
	flag.Parse()

	logger, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	key, err := loadKey(*keyPath)
	if err != nil {
		return err
	}
	s, err := tgsim.New(tgsim.Options{Addr: *addr, Key: key, DC: *dc, FixedCode: *code, Logger: logger})
	if err != nil {
		return err
	}
	defer s.Close()
	if *pubOut != "" {
		if err := os.WriteFile(*pubOut, []byte(s.PublicKeyPEM()), 0o644); err != nil {
			return fmt.Errorf("failed to write public key: %w", err)
		}
	}
	for _, a := range accounts {
		spec := parseAccount(a)
		acc, err := s.CreateAccount(spec)
		if err != nil {
			return fmt.Errorf("failed to create account %q: %w", a, err)
		}
		logger.Info("Account created", zap.Int64("id", acc.ID), zap.String("name", acc.FirstName))
	}
	for _, phone := range autoReply {
		acc, ok := s.AccountByPhone(phone)
		if !ok {
			return fmt.Errorf("autoreply: no account with phone %s", phone)
		}
		s.SetAutoReply(acc.ID, func(in tgsim.Message) (string, bool) { return "echo: " + in.Text, true })
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *control != "" {
		srv := &http.Server{Addr: *control, Handler: s.ControlHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("Control API stopped", zap.Error(err))
				stop()
			}
		}()
		defer srv.Close()
	}
	fmt.Printf("tgsim: MTProto on %s (DC %d), control API on %s\n%s", s.Addr(), s.DC(), *control, s.PublicKeyPEM())
	return s.Serve(ctx)
}

// parseAccount reads "+PHONE First [Last] [@username] [password=PW]".
func parseAccount(v string) tgsim.AccountSpec {
	var spec tgsim.AccountSpec
	var names []string
	for i, f := range strings.Fields(v) {
		switch {
		case i == 0:
			spec.Phone = f
		case strings.HasPrefix(f, "@"):
			spec.Username = f[1:]
		case strings.HasPrefix(f, "password="):
			spec.Password = strings.TrimPrefix(f, "password=")
		default:
			names = append(names, f)
		}
	}
	if len(names) > 0 {
		spec.FirstName = names[0]
		spec.LastName = strings.Join(names[1:], " ")
	}
	return spec
}

func loadKey(path string) (*rsa.PrivateKey, error) {
	if path == "" {
		return nil, nil // New generates one
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		out := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		if err := os.WriteFile(path, out, 0o600); err != nil {
			return nil, fmt.Errorf("failed to write key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no PEM block in %s", path)
	}
	return x509.ParsePKCS1PrivateKey(block.Bytes)
}
