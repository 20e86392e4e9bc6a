package grantspec

import (
	"encoding/json"
	"fmt"
	"strings"
)

// The scheduled check ("grants that heal themselves"). An EventBridge rule
// invokes the handler on a schedule with a constant Input, the HealEvent of
// one grant:
//
//	{"crossaccountami":"heal-grant","ResourceProperties":{"KeyArn":"...","GranteePrincipal":"...","Operations":["..."],"RetiringPrincipal":"...","Name":"..."}}
//
// ResourceProperties are the grant's Custom::KmsGrant properties as the
// template carries them (CfnProperties), Name always set: the check finds
// the grant by its name, and re-creates it under that name if it is gone.
// Only a grant the handler owns (RetiringPrincipal = HandlerRoleEnv's role)
// can be checked: the handler finds it with ListRetirableGrants.
const (
	// HealEventKey is the member of the Input that tells the handler's
	// router the kind of a scheduled event. CloudFormation events never
	// carry it.
	HealEventKey = "crossaccountami"
	// HealEventKind is HealEventKey's value in the check of one grant.
	HealEventKind = "heal-grant"
	// HealEventProperties is the member that holds the grant's properties,
	// named like the member of a CloudFormation event.
	HealEventProperties = "ResourceProperties"
)

// The metric the check writes for each run (in CloudWatch's embedded metric
// format, see internal/emf), in namespace MetricNamespace with the single
// dimension MetricDimensionGrantName (the grant's name):
//
//   - MetricGrantRecreated (Count) is 1 when the grant was gone and the
//     check re-created it, 0 when it was there. An alarm on Sum >= 1 fires
//     on a heal; missing data means the check did not run (or failed).
//   - MetricGrantCheckFailed (Count) is 1 when the check could not tell or
//     could not re-create (KMS denied it, the key is disabled, the event is
//     invalid, ...), 0 when it succeeded. The invocation then fails as well,
//     so the function's Errors metric counts it too.
const (
	MetricNamespace          = "CrossAccountAmi"
	MetricGrantRecreated     = "GrantRecreated"
	MetricGrantCheckFailed   = "GrantCheckFailed"
	MetricDimensionGrantName = "GrantName"
)

// HealEvent is the Input of the scheduled check of one grant.
type HealEvent struct {
	// Kind is HealEventKind.
	Kind string `json:"crossaccountami"`
	// ResourceProperties are the grant's properties as CfnProperties
	// renders them, without VerifyToken (it defines nothing to check).
	ResourceProperties map[string]interface{} `json:"ResourceProperties"`
}

// NewHealEvent returns the check of the grant p defines. p.Name must be the
// grant's name (for a grant of the default name, DefaultName of its stack
// and logical id). Values may be CDK tokens.
func NewHealEvent(p Properties) (HealEvent, error) {
	if p.Name == "" {
		return HealEvent{}, fmt.Errorf("%s: the %s event needs the grant's name, got none", PropName, HealEventKind)
	}
	p.VerifyToken = ""
	return HealEvent{Kind: HealEventKind, ResourceProperties: p.CfnProperties()}, nil
}

// Map returns the event as the object an EventBridge target's Input is made
// of (awsevents.RuleTargetInput_FromObject in the constructs): CDK tokens in
// its values resolve at deploy time.
func (e HealEvent) Map() map[string]interface{} {
	return map[string]interface{}{HealEventKey: e.Kind, HealEventProperties: e.ResourceProperties}
}

// HealEventInput is NewHealEvent(p).Map(): the rule target's Input.
func HealEventInput(p Properties) (map[string]interface{}, error) {
	e, err := NewHealEvent(p)
	if err != nil {
		return nil, err
	}
	return e.Map(), nil
}

// EncodeHealEvent returns the Input as JSON, for properties without tokens:
// it validates them as the handler will.
func EncodeHealEvent(p Properties) ([]byte, error) {
	e, err := NewHealEvent(p)
	if err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("invalid %s event: %s", HealEventKind, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return json.Marshal(e.Map())
}

// DecodeHealEvent reads the Input of a scheduled check and validates the
// grant's properties as Decode does, Name required. Unknown members are
// ignored, like unknown properties.
func DecodeHealEvent(raw []byte) (Properties, error) {
	var e HealEvent
	if err := json.Unmarshal(raw, &e); err != nil {
		return Properties{}, fmt.Errorf("invalid %s event: %v", HealEventKind, err)
	}
	if e.Kind != HealEventKind {
		return Properties{}, fmt.Errorf("invalid %s event: %s: expected %q, got %q", HealEventKind, HealEventKey, HealEventKind, e.Kind)
	}
	if e.ResourceProperties == nil {
		return Properties{}, fmt.Errorf("invalid %s event: %s: expected the grant's properties, got none", HealEventKind, HealEventProperties)
	}
	p, err := Decode(e.ResourceProperties)
	if err == nil && p.Name == "" {
		err = fmt.Errorf("%s: the check needs the grant's name, got none", PropName)
	}
	if err != nil {
		return Properties{}, fmt.Errorf("invalid %s event: %s: %s", HealEventKind, HealEventProperties, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return p, nil
}

// HealEventName returns the grant name an event carries, as far as it can
// be read: a check that fails on an invalid event still reports its metric
// under that name. "" when there is none.
func HealEventName(raw []byte) string {
	var e struct {
		ResourceProperties struct {
			Name interface{}
		}
	}
	_ = json.Unmarshal(raw, &e) // what cannot be read stays empty
	s, _ := e.ResourceProperties.Name.(string)
	return s
}
