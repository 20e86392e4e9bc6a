package grantspec

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// The scheduled check ("grants that heal themselves"). An EventBridge rule
// invokes the handler on a schedule with a constant Input, the HealEvent of
// one grant:
//
//	{"crossaccountami":"heal-grant","StackId":"arn:aws:cloudformation:...:stack/dest/...","LogicalResourceId":"AmiGrant...","PhysicalResourceId":"...","ResourceProperties":{"KeyArn":"...","GranteePrincipal":"...","Operations":["..."],"RetiringPrincipal":"...","Name":"..."}}
//
// ResourceProperties are the grant's Custom::KmsGrant properties as the
// template carries them (CfnProperties), Name always set: the check finds
// the grant by its name, and re-creates it under that name if it is gone.
// Only a grant the handler owns (RetiringPrincipal = HandlerRoleEnv's role)
// can be checked: the handler finds it with ListRetirableGrants.
//
// StackId, LogicalResourceId and PhysicalResourceId (named like the members
// of a CloudFormation event) name the Custom::KmsGrant the check belongs
// to (HealResource): the check re-creates a grant only while CloudFormation
// shows that resource, with that physical id, not being deleted. An event
// delivered late or twice (Lambda's asynchronous invocations may be) after
// the resource's Delete then re-creates nothing.
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
	// HealEventStackID, HealEventLogicalID and HealEventPhysicalID are the
	// members that name the grant's resource (HealResource).
	HealEventStackID    = "StackId"
	HealEventLogicalID  = "LogicalResourceId"
	HealEventPhysicalID = "PhysicalResourceId"
)

// HealResource is the Custom::KmsGrant a scheduled check belongs to: the
// stack's unique id (AWS::StackId: CloudFormation describes a deleted
// stack's resources by it, for 90 days), the resource's logical id and its
// physical id (its Ref). Values may be CDK tokens.
type HealResource struct {
	StackID, LogicalResourceID, PhysicalResourceID string
}

// validate checks that r names a resource: every field set, the stack id a
// CloudFormation stack ARN.
func (r HealResource) validate() error {
	var missing []string
	for _, f := range []struct{ name, value string }{
		{HealEventStackID, r.StackID}, {HealEventLogicalID, r.LogicalResourceID}, {HealEventPhysicalID, r.PhysicalResourceID},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return &NoResourceError{Missing: missing}
	}
	if !stackARN.MatchString(r.StackID) {
		return fmt.Errorf("%s: expected the stack's unique id (arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<uuid>), got %q", HealEventStackID, r.StackID)
	}
	return nil
}

var stackARN = regexp.MustCompile(`^arn:[a-z0-9-]+:cloudformation:[a-z0-9-]+:[0-9]{12}:stack/[A-Za-z][A-Za-z0-9-]*/[0-9a-fA-F-]+$`)

// NoResourceError is a check's event that does not name its grant's
// resource: one made before the check learned to ask CloudFormation whether
// the resource still exists. Such an event is refused, never acted on: it
// could be a late delivery after the resource's Delete.
type NoResourceError struct {
	// Missing are the members the event lacks.
	Missing []string
}

func (e *NoResourceError) Error() string {
	return fmt.Sprintf("the event names no Custom::KmsGrant resource (it lacks %s): its EventBridge rule was made by an older version of this library. The check re-creates a grant only while CloudFormation shows the grant's resource, so it does nothing on this event; deploy the stack again, which gives the rule an Input that names the resource",
		strings.Join(e.Missing, ", "))
}

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
	// The grant's resource (HealResource).
	StackID            string `json:"StackId"`
	LogicalResourceID  string `json:"LogicalResourceId"`
	PhysicalResourceID string `json:"PhysicalResourceId"`
	// ResourceProperties are the grant's properties as CfnProperties
	// renders them, without VerifyToken (it defines nothing to check).
	ResourceProperties map[string]interface{} `json:"ResourceProperties"`
}

// Resource is the grant's resource the event names.
func (e HealEvent) Resource() HealResource {
	return HealResource{StackID: e.StackID, LogicalResourceID: e.LogicalResourceID, PhysicalResourceID: e.PhysicalResourceID}
}

// NewHealEvent returns the check of the grant p defines, whose resource is
// r. p.Name must be the grant's name (for a grant of the default name,
// DefaultName of its stack and logical id). Values may be CDK tokens.
func NewHealEvent(p Properties, r HealResource) (HealEvent, error) {
	if p.Name == "" {
		return HealEvent{}, fmt.Errorf("%s: the %s event needs the grant's name, got none", PropName, HealEventKind)
	}
	if r.StackID == "" || r.LogicalResourceID == "" || r.PhysicalResourceID == "" {
		return HealEvent{}, fmt.Errorf("the %s event needs the grant's resource: %v", HealEventKind, r.validate())
	}
	p.VerifyToken = ""
	return HealEvent{Kind: HealEventKind, StackID: r.StackID, LogicalResourceID: r.LogicalResourceID, PhysicalResourceID: r.PhysicalResourceID,
		ResourceProperties: p.CfnProperties()}, nil
}

// Map returns the event as the object an EventBridge target's Input is made
// of (awsevents.RuleTargetInput_FromObject in the constructs): CDK tokens in
// its values resolve at deploy time.
func (e HealEvent) Map() map[string]interface{} {
	return map[string]interface{}{
		HealEventKey: e.Kind, HealEventProperties: e.ResourceProperties,
		HealEventStackID: e.StackID, HealEventLogicalID: e.LogicalResourceID, HealEventPhysicalID: e.PhysicalResourceID,
	}
}

// HealEventInput is NewHealEvent(p, r).Map(): the rule target's Input.
func HealEventInput(p Properties, r HealResource) (map[string]interface{}, error) {
	e, err := NewHealEvent(p, r)
	if err != nil {
		return nil, err
	}
	return e.Map(), nil
}

// EncodeHealEvent returns the Input as JSON, for values without tokens:
// it validates them as the handler will.
func EncodeHealEvent(p Properties, r HealResource) ([]byte, error) {
	e, err := NewHealEvent(p, r)
	if err != nil {
		return nil, err
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("invalid %s event: %s", HealEventKind, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("invalid %s event: %v", HealEventKind, err)
	}
	return json.Marshal(e.Map())
}

// DecodeHealEvent reads the Input of a scheduled check and validates the
// grant's properties as Decode does, Name required, and the resource it
// names. An event that names no resource fails with a *NoResourceError
// (wrapped). Unknown members are ignored, like unknown properties.
func DecodeHealEvent(raw []byte) (Properties, HealResource, error) {
	var e HealEvent
	if err := json.Unmarshal(raw, &e); err != nil {
		return Properties{}, HealResource{}, fmt.Errorf("invalid %s event: %v", HealEventKind, err)
	}
	if e.Kind != HealEventKind {
		return Properties{}, HealResource{}, fmt.Errorf("invalid %s event: %s: expected %q, got %q", HealEventKind, HealEventKey, HealEventKind, e.Kind)
	}
	if e.ResourceProperties == nil {
		return Properties{}, HealResource{}, fmt.Errorf("invalid %s event: %s: expected the grant's properties, got none", HealEventKind, HealEventProperties)
	}
	p, err := Decode(e.ResourceProperties)
	if err == nil && p.Name == "" {
		err = fmt.Errorf("%s: the check needs the grant's name, got none", PropName)
	}
	if err != nil {
		return Properties{}, HealResource{}, fmt.Errorf("invalid %s event: %s: %s", HealEventKind, HealEventProperties, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if err := e.Resource().validate(); err != nil {
		return Properties{}, HealResource{}, fmt.Errorf("invalid %s event: %w", HealEventKind, err)
	}
	return p, e.Resource(), nil
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
