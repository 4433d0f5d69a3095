//go:build tools

package tools

import _ "github.com/srl-labs/containerlab"
