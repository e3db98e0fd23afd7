package ossemu

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
)

// ossError is an error answer in OSS's XML shape.
type ossError struct {
	Status  int
	Code    string
	Message string
	EC      string
	// Extra elements some errors carry (ArgumentName, StringToSign, …), in order.
	Extra [][2]string
}

func (e *ossError) Error() string { return e.Code + ": " + e.Message }

func newErr(status int, code, msg string) *ossError {
	return &ossError{Status: status, Code: code, Message: msg}
}

func (e *ossError) ec(ec string) *ossError { e.EC = ec; return e }

func (e *ossError) with(name, value string) *ossError {
	e.Extra = append(e.Extra, [2]string{name, value})
	return e
}

func errAccessDenied(msg string) *ossError { return newErr(http.StatusForbidden, "AccessDenied", msg) }

func errInvalidArgument(msg, name, value string) *ossError {
	return newErr(http.StatusBadRequest, "InvalidArgument", msg).with("ArgumentName", name).with("ArgumentValue", value)
}

func errSignature(stringToSign, provided, akID string) *ossError {
	e := newErr(http.StatusForbidden, "SignatureDoesNotMatch",
		"The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	if stringToSign != "" {
		e.with("StringToSign", stringToSign).with("StringToSignBytes", hexBytes(stringToSign))
	}
	return e.with("SignatureProvided", provided).with("OSSAccessKeyId", akID)
}

func hexBytes(s string) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 0, len(s)*3)
	for i := 0; i < len(s); i++ {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, digits[s[i]>>4], digits[s[i]&15])
	}
	return string(b)
}

func errNoSuchBucket() *ossError {
	return newErr(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist.")
}

func errNoSuchKey() *ossError {
	return newErr(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
}

func errNoSuchUpload() *ossError {
	return newErr(http.StatusNotFound, "NoSuchUpload",
		"The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
}

// write sends the error. HEAD answers carry no body, so the XML goes
// base64-encoded in x-oss-err as OSS does.
func (e *ossError) write(w http.ResponseWriter, r *http.Request, requestID, hostID string) {
	body := e.xml(requestID, hostID)
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	if e.EC != "" {
		h.Set("x-oss-ec", e.EC)
	}
	if r.Method == http.MethodHead {
		h.Set("x-oss-err", base64.StdEncoding.EncodeToString(body))
		w.WriteHeader(e.Status)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}

func (e *ossError) xml(requestID, hostID string) []byte {
	b := []byte(xml.Header + "<Error>\n")
	elem := func(name, value string) {
		b = append(b, "  <"+name+">"...)
		b = appendEscaped(b, value)
		b = append(b, "</"+name+">\n"...)
	}
	elem("Code", e.Code)
	elem("Message", e.Message)
	elem("RequestId", requestID)
	elem("HostId", hostID)
	for _, x := range e.Extra {
		elem(x[0], x[1])
	}
	if e.EC != "" {
		elem("EC", e.EC)
		elem("RecommendDoc", "https://api.aliyun.com/troubleshoot?q="+e.EC)
	}
	return append(b, "</Error>\n"...)
}

// xmlText escapes character data the way OSS writes it: quotes stay
// as they are.
var xmlText = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func appendEscaped(b []byte, s string) []byte {
	return append(b, xmlText.Replace(s)...)
}
