//go:build !wasip1

package sdk

import "github.com/wasmfleet/fleet/sdk/kernel"

func least(set, keys []uint64) int { return kernel.Least(set, keys) }
