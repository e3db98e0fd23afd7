package ossemu

// sessionPolicy is a parsed RAM policy document (the inline Policy of
// AssumeRole). See sts.go for parsing and evaluation.
type sessionPolicy struct {
	Statements []policyStatement
}

type policyStatement struct {
	Effect    string // "Allow" or "Deny"
	Actions   []string
	Resources []string
}
