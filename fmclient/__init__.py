"""The gateway's client of real Fedimint federations (fedimintd 0.13): consensus encoding,
invite codes, client configs, and (in later steps) the guardians' API, transactions, mintv2
e-cash, walletv2 and lnv2. Product code: the actor uses it for federations joined by a `fed11…`
invite. The protocol reference is ../shared/reference/fedimint-0.13.md; the crates' sources and
the real binaries are the judges (test vectors in tests/fmclient/data/ come from them)."""
