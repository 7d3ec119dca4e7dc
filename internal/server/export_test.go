package server

// Plaintext returns cfg with the store left unsealed: the baseline of the
// encryption benchmark, measured in the same run as the sealed figure.
func Plaintext(cfg Config) Config {
	cfg.plaintext = true
	return cfg
}

// DescribeDSN is describeDSN, for the topology's test.
var DescribeDSN = describeDSN
