// Package throughput measures how fast fleet starts, stops and destroys
// units on real systemd machines, against systemd's own floor for the same
// units on the same machines (make bench-systemd). It has tests only.
package throughput
