package main

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// connSampler watches the TCP connections the simulator accepts, from the
// kernel's socket table (/proc/net/tcp): every tick it counts the
// established connections whose local port is the simulator's, and how many
// of them are new since the last tick. Nothing in the simulator or the
// gateway is changed for it.
type connSampler struct {
	port int
	tick time.Duration

	mu       sync.Mutex
	seen     map[string]bool
	newPer   []int // new connections per tick, from the start
	open     []int // established connections at each tick
	stop     chan struct{}
	finished chan struct{}
}

func startConnSampler(port int, tick time.Duration) *connSampler {
	s := &connSampler{port: port, tick: tick, seen: map[string]bool{}, stop: make(chan struct{}), finished: make(chan struct{})}
	s.sample() // connections already there are not new
	s.newPer, s.open = nil, nil
	go s.loop()
	return s
}

func (s *connSampler) loop() {
	defer close(s.finished)
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sample()
		}
	}
}

func (s *connSampler) sample() {
	peers := establishedPeers(s.port)
	s.mu.Lock()
	defer s.mu.Unlock()
	fresh := 0
	for _, p := range peers {
		if !s.seen[p] {
			s.seen[p] = true
			fresh++
		}
	}
	s.newPer = append(s.newPer, fresh)
	s.open = append(s.open, len(peers))
}

// Stop ends the sampling and returns the series.
func (s *connSampler) Stop() (newPer, open []int) {
	close(s.stop)
	<-s.finished
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newPer, s.open
}

// Wait waits until at least n connections are established (or ctx ends).
func (s *connSampler) Wait(ctx context.Context, n int) error {
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		s.mu.Lock()
		ok := len(s.open) > 0 && s.open[len(s.open)-1] >= n
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// establishedPeers lists the remote ends ("addr:port" in the kernel's hex)
// of the established IPv4 and IPv6 connections whose local port is port.
func establishedPeers(port int) []string {
	var peers []string
	for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		peers = append(peers, parseEstablished(bufio.NewScanner(f), port)...)
		_ = f.Close()
	}
	return peers
}

// tcpEstablished is the kernel's TCP_ESTABLISHED state in /proc/net/tcp.
const tcpEstablished = "01"

func parseEstablished(sc *bufio.Scanner, port int) []string {
	var peers []string
	want := strings.ToUpper(strconv.FormatInt(int64(port), 16))
	for len(want) < 4 {
		want = "0" + want
	}
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != tcpEstablished {
			continue
		}
		_, lport, ok := strings.Cut(f[1], ":")
		if !ok || lport != want {
			continue
		}
		peers = append(peers, f[2])
	}
	return peers
}
