// Command dataserver runs the bank's data server: the accounts, each one an
// actor, behind the original bank's HTTP routes. Run it with --help.
package main

import "github.com/bank/gobank/cmd/internal/servercmd"

func main() { servercmd.Main("dataserver", servercmd.Data) }
