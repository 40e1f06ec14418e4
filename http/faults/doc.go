// Package faults holds the bank's properties under network faults, each a
// test: real data and business servers on loopback (dataservertest,
// businesstest), the links between the client, the business servers and
// the data server through fault-injecting proxies (http/faultnet).
// See docs/faults.md for the catalogue of faults and what each checks.
package faults
