// Package hook lets package native reach the SDK's runner, the ABI's guest
// side, which package sdk does not export: a policy author sees the
// authoring API and nothing of the plumbing.
package hook

// Runner answers the ABI's calls with the bytes a module's exports take and
// return (docs/abi.md).
type Runner interface {
	Apply(updates []byte) error
	Place(request []byte) ([]byte, error)
	PlaceDefined(handle uint32) ([]byte, error)
}

// NewRunner returns a Runner of policy, an sdk.Policy, with an empty
// cluster. Package sdk sets it when it initializes.
var NewRunner func(policy any) Runner
