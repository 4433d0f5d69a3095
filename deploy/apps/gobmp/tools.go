//go:build tools

package tools

import _ "github.com/sbezverk/gobmp/cmd/gobmp"
