package events

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"orch/nodeagent/daemon/rest"
)

// SentHeader names, on an answer, the member that sent the request's lifecycle event: a
// member that forwarded the request (to the leader) copies it back and sends none itself.
const SentHeader = "X-Orch-Lifecycle-Member"

// lifecycle is the event a route's success sends: action, on prefix + the object's name.
type lifecycle struct{ action, prefix string }

// lifecycles are the routes whose sync success is a lifecycle event (what runs in an
// operation — instances, image imports — sends its own from the operation). The object's
// name is the route's {vol} or {name}, or the request body's "name" for a create.
var lifecycles = map[string]lifecycle{
	"POST /1.0/profiles":                                    {"profile-created", "/1.0/profiles/"},
	"POST /1.0/profiles/{name}":                             {"profile-renamed", "/1.0/profiles/"},
	"PUT /1.0/profiles/{name}":                              {"profile-updated", "/1.0/profiles/"},
	"PATCH /1.0/profiles/{name}":                            {"profile-updated", "/1.0/profiles/"},
	"DELETE /1.0/profiles/{name}":                           {"profile-deleted", "/1.0/profiles/"},
	"POST /1.0/storage-pools":                               {"storage-pool-created", "/1.0/storage-pools/"},
	"PUT /1.0/storage-pools/{name}":                         {"storage-pool-updated", "/1.0/storage-pools/"},
	"PATCH /1.0/storage-pools/{name}":                       {"storage-pool-updated", "/1.0/storage-pools/"},
	"DELETE /1.0/storage-pools/{name}":                      {"storage-pool-deleted", "/1.0/storage-pools/"},
	"POST /1.0/storage-pools/{name}/volumes":                {"storage-volume-created", "/1.0/storage-pools/{name}/volumes/custom/"},
	"POST /1.0/storage-pools/{name}/volumes/custom":         {"storage-volume-created", "/1.0/storage-pools/{name}/volumes/custom/"},
	"DELETE /1.0/storage-pools/{name}/volumes/custom/{vol}": {"storage-volume-deleted", "/1.0/storage-pools/{name}/volumes/custom/"},
	"POST /1.0/networks":                                    {"network-created", "/1.0/networks/"},
	"PUT /1.0/networks/{name}":                              {"network-updated", "/1.0/networks/"},
	"PATCH /1.0/networks/{name}":                            {"network-updated", "/1.0/networks/"},
	"DELETE /1.0/networks/{name}":                           {"network-deleted", "/1.0/networks/"},
	"DELETE /1.0/images/{name}":                             {"image-deleted", "/1.0/images/"},
	"POST /1.0/images/aliases":                              {"image-alias-created", "/1.0/images/aliases/"},
	"DELETE /1.0/images/aliases/{name}":                     {"image-alias-deleted", "/1.0/images/aliases/"},
	"PUT /1.0/cluster/members/{name}":                       {"cluster-member-updated", "/1.0/cluster/members/"},
	"PATCH /1.0/cluster/members/{name}":                     {"cluster-member-updated", "/1.0/cluster/members/"},
	"DELETE /1.0/cluster/members/{name}":                    {"cluster-member-removed", "/1.0/cluster/members/"},
	"POST /1.0/certificates":                                {"certificate-created", "/1.0/certificates/"},
	"DELETE /1.0/certificates/{fingerprint}":                {"certificate-deleted", "/1.0/certificates/"},
}

// Wrap returns h, made to send the lifecycle event of pattern (when it has one) once it
// answered a sync success on this member.
func (h *Hub) Wrap(pattern string, next rest.HandlerFunc) rest.HandlerFunc {
	lc, ok := lifecycles[pattern]
	if !ok {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		name := bodyName(r)
		self := h.Members.Self()
		w.Header().Set(SentHeader, self)
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		if err := next(sw, r); err != nil {
			return err
		}
		if sw.code != http.StatusOK || w.Header().Get(SentHeader) != self {
			return nil // failed, async, or forwarded to a member that sent it
		}
		for _, k := range []string{"vol", "name", "fingerprint"} {
			if v := r.PathValue(k); v != "" {
				name = v
				break
			}
		}
		src := strings.ReplaceAll(lc.prefix, "{name}", r.PathValue("name")) + name
		if name == "" {
			src = strings.TrimSuffix(src, "/")
		}
		ctx := map[string]any{}
		if t := rest.Target(r); t != "" {
			ctx["target"] = t
		}
		h.Lifecycle(lc.action, src, ctx)
		return nil
	}
}

// bodyName is the "name" of a JSON request body ("" when none), the body left readable.
func bodyName(r *http.Request) string {
	if r.Method != http.MethodPost || r.Body == nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") && r.Header.Get("Content-Type") != "" {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	r.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return ""
	}
	var v struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(b, &v)
	return v.Name
}

// statusWriter records the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	code int
}

// WriteHeader records the status and writes it.
func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
