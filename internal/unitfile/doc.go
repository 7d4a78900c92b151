// Package unitfile parses systemd unit files the way fleet did, gives each
// one its content hash, and checks unit names.
//
// A unit's identity is the SHA-1 of its canonical serialization: the file is
// parsed into an ordered option list and written back, so comments, blank
// lines and spacing do not change the hash. This is fleet's rule, kept so that
// hashes read the same to operators moving over from fleet.
package unitfile
