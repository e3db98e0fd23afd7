package main

// The signing phase, not measured: one post-policy per upload from Caddy,
// and the PostObject form built from each.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"strconv"
	"sync"
	"sync/atomic"
)

// policy is what the post-policy route answers, as far as an uploader
// needs it; fields keeps the route's order.
type policy struct {
	URL    string
	Key    string
	Fields [][2]string
}

func (p *policy) UnmarshalJSON(b []byte) error {
	var doc struct {
		URL    string          `json:"url"`
		Key    string          `json:"key"`
		Fields json.RawMessage `json:"fields"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	p.URL, p.Key = doc.URL, doc.Key
	dec := json.NewDecoder(bytes.NewReader(doc.Fields))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return errors.New("fields is not an object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := t.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return err
		}
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		p.Fields = append(p.Fields, [2]string{name, s})
	}
	return nil
}

// signAll asks the post-policy route for one policy per upload.
func signAll(ctx context.Context, cfg loadConfig, client *http.Client) ([]policy, error) {
	q := cfg.policyURL.Query()
	q.Set("filename", cfg.filename)
	q.Set("type", cfg.fileType)
	q.Set("size", strconv.Itoa(cfg.size))
	u := *cfg.policyURL
	u.RawQuery = q.Encode()
	target := u.String()

	policies := make([]policy, cfg.n)
	errs := make(chan error, cfg.signConc)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < min(cfg.signConc, cfg.n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= cfg.n {
					return
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				req.Header.Set("X-User", cfg.run)
				resp, err := client.Do(req)
				if err != nil {
					errs <- fmt.Errorf("post-policy: %v", err)
					next.Store(int64(cfg.n))
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("post-policy: %d %s", resp.StatusCode, truncate(b, 300))
					next.Store(int64(cfg.n))
					return
				}
				if err := json.Unmarshal(b, &policies[i]); err != nil || policies[i].URL == "" || policies[i].Key == "" {
					errs <- fmt.Errorf("post-policy: unexpected answer %s", truncate(b, 300))
					next.Store(int64(cfg.n))
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	seen := make(map[string]bool, len(policies))
	for _, p := range policies {
		if seen[p.Key] {
			return nil, fmt.Errorf("post-policy gave the key %q twice", p.Key)
		}
		seen[p.Key] = true
	}
	return policies, nil
}

// formBody is the PostObject form: the policy's fields in its order, then
// the file, of random bytes so that every object differs.
func formBody(p policy, cfg loadConfig, i int) ([]byte, string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range p.Fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return nil, "", err
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, strconv.Itoa(i)+"-"+cfg.filename))
	h.Set("Content-Type", cfg.fileType)
	fw, err := mw.CreatePart(h)
	if err != nil {
		return nil, "", err
	}
	data := make([]byte, cfg.size)
	_, _ = rand.Read(data)
	_, _ = fw.Write(data)
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), mw.FormDataContentType(), nil
}
