// Command businessserver runs one of the bank's business servers: deposits,
// withdrawals, balances and transfers, over accounts kept by a data server.
// Usage: businessserver DATA_URL [PORT]; run it with --help.
package main

import "github.com/bank/gobank/cmd/internal/servercmd"

func main() { servercmd.Main("businessserver", servercmd.Business) }
