package ossemu_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"os"
	"strconv"
)

func createFile(path string) (*os.File, error) { return os.Create(path) }

func hmacSHA1(secret, msg string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func itoa(n int) string { return strconv.Itoa(n) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func xmlUnmarshal(b []byte, v any) error { return xml.Unmarshal(b, v) }
