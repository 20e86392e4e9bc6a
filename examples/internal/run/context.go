package run

import (
	"fmt"
	"strconv"

	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Context reads a cdk context value (-c key=value, cdk.json) as a string,
// or def when it is not set. JSON numbers and booleans in cdk.json read as
// their text.
func Context(scope constructs.IConstruct, key, def string) string {
	switch v := scope.Node().TryGetContext(jsii.String(key)).(type) {
	case string:
		if v != "" {
			return v
		}
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return def
}

// DestinationAccounts reads the examples' destination accounts: context
// destinations (how many, default 1) consecutive account ids from
// destinationAccount (default 222222222222). A bad value panics with the
// context key and the value, before any stack exists.
func DestinationAccounts(scope constructs.IConstruct) []string {
	count := Context(scope, "destinations", "1")
	n, err := strconv.Atoi(count)
	if err != nil || n < 1 {
		panic(fmt.Errorf("context destinations: expected a positive integer, got %q", count))
	}
	first := Context(scope, "destinationAccount", "222222222222")
	base, err := strconv.ParseInt(first, 10, 64)
	if err != nil || len(first) != 12 {
		panic(fmt.Errorf("context destinationAccount: expected a 12-digit account id, got %q", first))
	}
	accounts := make([]string, n)
	for i := range accounts {
		accounts[i] = fmt.Sprintf("%012d", base+int64(i))
	}
	return accounts
}
