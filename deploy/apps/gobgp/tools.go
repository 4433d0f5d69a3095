//go:build tools

package tools

import (
	_ "github.com/osrg/gobgp/v3/cmd/gobgp"
	_ "github.com/osrg/gobgp/v3/cmd/gobgpd"
)
