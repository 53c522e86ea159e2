package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"
)

// requestCount is how many requests of one kind the gateway made to the
// homeserver during a burst, per bridged message.
type requestCount struct {
	Request string  `json:"request"` // method and path, IDs replaced by {room}, {user}, {txn}
	PerMsg  float64 `json:"per_msg"`
}

// gatewayRequests counts the homeserver requests the gateway logged
// between from and to (its JSON log at debug level: "Request completed"
// lines), by method and path, per message. It tells where the homeserver's
// work per bridged message comes from. A log at a higher level has no such
// lines and gives nothing.
func gatewayRequests(logPath string, from, to time.Time, messages int) ([]requestCount, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return countRequests(f, from, to, messages)
}

func countRequests(r io.Reader, from, to time.Time, messages int) ([]requestCount, error) {
	counts := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !strings.Contains(string(line), `"Request completed"`) {
			continue
		}
		var entry struct {
			Message string    `json:"message"`
			Method  string    `json:"method"`
			URL     string    `json:"url"`
			Time    time.Time `json:"time"`
		}
		if json.Unmarshal(line, &entry) != nil || entry.Message != "Request completed" || entry.URL == "" {
			continue
		}
		if entry.Time.Before(from) || entry.Time.After(to) {
			continue
		}
		counts[entry.Method+" "+normalizePath(entry.URL)]++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the gateway log: %w", err)
	}
	out := make([]requestCount, 0, len(counts))
	for k, n := range counts {
		out = append(out, requestCount{Request: k, PerMsg: float64(n) / float64(max(messages, 1))})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].PerMsg != out[j].PerMsg {
			return out[i].PerMsg > out[j].PerMsg
		}
		return out[i].Request < out[j].Request
	})
	return out, nil
}

// normalizePath keeps a request URL's path with its room IDs, user IDs and
// transaction IDs replaced, so that requests of one kind count together.
func normalizePath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	segs := strings.Split(u.Path, "/")
	for i, s := range segs {
		switch {
		case strings.HasPrefix(s, "!"):
			segs[i] = "{room}"
		case strings.HasPrefix(s, "@"):
			segs[i] = "{user}"
		case i >= 2 && (segs[i-2] == "send" || segs[i-2] == "sendToDevice"):
			segs[i] = "{txn}"
		}
	}
	return strings.Join(segs, "/")
}
