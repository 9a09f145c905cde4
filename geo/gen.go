package geo

// Refresh the embedded prefix table after editing jurisdictions.yaml (needs
// npm and network access; pass -tgz FILE to use a downloaded tarball):
//
//go:generate go run ./internal/gen -yaml jurisdictions.yaml -out jurisdiction_prefixes.gz
