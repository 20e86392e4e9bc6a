// Package fakekms is an in-memory KMS that speaks the real wire protocol
// (awsJson1_1 over HTTP) on 127.0.0.1, for tests that must go through the
// real SDK client and its retryer. It does what moto does not: a grant Name
// with the same parameters returns the same grant id, a missing key answers
// NotFoundException, a disabled or pending-deletion key answers
// DisabledException / KMSInvalidStateException, and faults can be injected
// per operation (error codes n times, or a call that never answers).
//
// Only the grant operations the handler uses are served: CreateGrant,
// ListGrants, ListRetirableGrants, RevokeGrant, RetireGrant. RetireGrant is
// authorized as KMS does it, from the grant: with SetCaller, only a caller
// that is the grant's retiring principal may retire it.
package fakekms

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Key states.
const (
	Enabled         = "Enabled"
	Disabled        = "Disabled"
	PendingDeletion = "PendingDeletion"
)

// Grant as stored and listed.
type Grant struct {
	KeyId             string
	GrantId           string
	Name              string            `json:",omitempty"`
	GranteePrincipal  string            `json:",omitempty"`
	RetiringPrincipal string            `json:",omitempty"`
	Operations        []string          `json:",omitempty"`
	Constraints       *GrantConstraints `json:",omitempty"`
}

// GrantConstraints as on the wire.
type GrantConstraints struct {
	EncryptionContextEquals map[string]string `json:",omitempty"`
	EncryptionContextSubset map[string]string `json:",omitempty"`
}

// Fault makes the next Times calls of an operation fail with Code (HTTP
// Status, default 400), or never answer when Hang is set. Times 0 means
// every call.
type Fault struct {
	Code    string
	Message string
	Status  int
	Times   int
	Hang    bool
}

// Server is a running fake KMS.
type Server struct {
	URL string

	mu     sync.Mutex
	keys   map[string]string // key ARN -> state
	grants map[string][]Grant
	faults map[string][]*Fault
	calls  []string
	seq    int
	caller string
}

// Start runs a fake KMS until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{keys: map[string]string{}, grants: map[string][]Grant{}, faults: map[string][]*Fault{}}
	hs := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(hs.Close)
	s.URL = hs.URL
	return s
}

// AddKey creates a key in the given state; keyARN must be a full key ARN.
func (s *Server) AddKey(keyARN, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[keyARN] = state
}

// SetKeyState changes a key's state.
func (s *Server) SetKeyState(keyARN, state string) { s.AddKey(keyARN, state) }

// DeleteKey removes a key and its grants.
func (s *Server) DeleteKey(keyARN string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, keyARN)
	delete(s.grants, keyARN)
}

// SetCaller sets the principal the requests come from (the fake cannot read
// it off the signature). With a caller set, RetireGrant is denied unless the
// caller is the grant's retiring principal.
func (s *Server) SetCaller(arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.caller = arn
}

// AddGrant stores a grant made by someone else (by hand, by another
// account) and returns its id.
func (s *Server) AddGrant(keyARN string, g Grant) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	g.KeyId, g.GrantId = keyARN, s.grantID(keyARN)
	slices.Sort(g.Operations)
	s.grants[keyARN] = append(s.grants[keyARN], g)
	return g.GrantId
}

// Inject queues a fault for op (such as "CreateGrant").
func (s *Server) Inject(op string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[op] = append(s.faults[op], &f)
}

// ClearFaults removes every queued fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string][]*Fault{}
}

// Grants returns the grants of a key.
func (s *Server) Grants(keyARN string) []Grant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.grants[keyARN])
}

// Calls returns the operations received, in order (faulted ones included).
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// ResetCalls forgets the calls received so far.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	var in map[string]interface{}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeErr(w, 400, "SerializationException", err.Error())
		return
	}
	s.mu.Lock()
	s.calls = append(s.calls, op)
	f := s.nextFault(op)
	s.mu.Unlock()
	if f != nil {
		if f.Hang {
			<-r.Context().Done()
			return
		}
		status := f.Status
		if status == 0 {
			status = 400
		}
		writeErr(w, status, f.Code, f.Message)
		return
	}
	s.mu.Lock()
	out, status, code, msg := s.handle(op, in)
	s.mu.Unlock()
	if code != "" {
		writeErr(w, status, code, msg)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) nextFault(op string) *Fault {
	q := s.faults[op]
	if len(q) == 0 {
		return nil
	}
	f := q[0]
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			s.faults[op] = q[1:]
		}
	}
	return f
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

func str(in map[string]interface{}, k string) string { s, _ := in[k].(string); return s }

// key resolves a KeyId (a key ARN or a bare key id) to the stored ARN.
func (s *Server) key(id string) (string, string, bool) {
	for arn, state := range s.keys {
		if arn == id || strings.HasSuffix(arn, ":key/"+id) {
			return arn, state, true
		}
	}
	return "", "", false
}

func (s *Server) usableKey(id string) (arn string, status int, code, msg string) {
	arn, state, ok := s.key(id)
	switch {
	case !ok:
		return "", 400, "NotFoundException", fmt.Sprintf("Key '%s' does not exist", id)
	case state == Disabled:
		return "", 400, "DisabledException", fmt.Sprintf("%s is disabled.", arn)
	case state == PendingDeletion:
		return "", 400, "KMSInvalidStateException", fmt.Sprintf("%s is pending deletion.", arn)
	}
	return arn, 0, "", ""
}

func (s *Server) handle(op string, in map[string]interface{}) (out interface{}, status int, code, msg string) {
	switch op {
	case "CreateGrant":
		arn, status, code, msg := s.usableKey(str(in, "KeyId"))
		if code != "" {
			return nil, status, code, msg
		}
		g := Grant{KeyId: arn, Name: str(in, "Name"), GranteePrincipal: str(in, "GranteePrincipal"), RetiringPrincipal: str(in, "RetiringPrincipal")}
		for _, o := range in["Operations"].([]interface{}) {
			g.Operations = append(g.Operations, o.(string))
		}
		slices.Sort(g.Operations)
		if c, ok := in["Constraints"]; ok {
			b, _ := json.Marshal(c)
			g.Constraints = &GrantConstraints{}
			_ = json.Unmarshal(b, g.Constraints)
		}
		if g.Name != "" {
			for _, old := range s.grants[arn] {
				if sameParams(old, g) {
					return map[string]string{"GrantId": old.GrantId, "GrantToken": s.token()}, 0, "", ""
				}
			}
		}
		g.GrantId = s.grantID(arn)
		s.grants[arn] = append(s.grants[arn], g)
		return map[string]string{"GrantId": g.GrantId, "GrantToken": s.token()}, 0, "", ""
	case "ListGrants":
		arn, _, ok := s.key(str(in, "KeyId"))
		if !ok {
			return nil, 400, "NotFoundException", fmt.Sprintf("Key '%s' does not exist", str(in, "KeyId"))
		}
		grants := []Grant{}
		for _, g := range s.grants[arn] {
			if id := str(in, "GrantId"); id == "" || id == g.GrantId {
				grants = append(grants, g)
			}
		}
		return map[string]interface{}{"Grants": grants, "Truncated": false}, 0, "", ""
	case "ListRetirableGrants":
		grants := []Grant{}
		for _, arn := range slices.Sorted(maps.Keys(s.grants)) {
			for _, g := range s.grants[arn] {
				if g.RetiringPrincipal != "" && g.RetiringPrincipal == str(in, "RetiringPrincipal") {
					grants = append(grants, g)
				}
			}
		}
		return map[string]interface{}{"Grants": grants, "Truncated": false}, 0, "", ""
	case "RevokeGrant", "RetireGrant":
		arn, status, code, msg := s.usableKey(str(in, "KeyId"))
		if code != "" {
			return nil, status, code, msg
		}
		id := str(in, "GrantId")
		if len(id) != 64 {
			return nil, 400, "InvalidGrantIdException", fmt.Sprintf("Invalid grant id %q", id)
		}
		for i, g := range s.grants[arn] {
			if g.GrantId == id {
				if op == "RetireGrant" && s.caller != "" && g.RetiringPrincipal != s.caller {
					return nil, 400, "AccessDeniedException", fmt.Sprintf("User: %s is not authorized to perform: kms:RetireGrant", s.caller)
				}
				s.grants[arn] = slices.Delete(s.grants[arn], i, i+1)
				return map[string]string{}, 0, "", ""
			}
		}
		return nil, 400, "NotFoundException", fmt.Sprintf("Grant ID %s not found", id)
	}
	return nil, 400, "UnknownOperationException", "fakekms does not serve " + op
}

// grantID is a new grant id: 64 hex digits, as KMS's.
func (s *Server) grantID(keyARN string) string {
	s.seq++
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", keyARN, s.seq)))
	return hex.EncodeToString(sum[:])
}

func (s *Server) token() string {
	s.seq++
	return fmt.Sprintf("token-%d", s.seq)
}

func sameParams(a, b Grant) bool {
	ca, _ := json.Marshal(a.Constraints)
	cb, _ := json.Marshal(b.Constraints)
	return a.Name == b.Name && a.GranteePrincipal == b.GranteePrincipal &&
		a.RetiringPrincipal == b.RetiringPrincipal && slices.Equal(a.Operations, b.Operations) &&
		string(ca) == string(cb)
}
