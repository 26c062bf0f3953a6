# The crates meant for other Rust projects, sourced by check-package.sh and check-semver.sh so
# that both check the same list: `crates` names their packages, `packages` holds cargo's `-p`
# arguments. On crates.io each carries the prefix `payments-` (`domain` and `adapter-memory` were
# taken there, and a family of crates is easier to find under one prefix); the code still names
# them by their directory (`domain`, `adapter_postgres`), as each manifest's `[lib]` keeps it.
crates=(domain application stripe-signature adapter-memory adapter-postgres adapter-redis adapter-auth
  adapter-webhooks adapter-monnify adapter-paystack adapter-simulated-gateway adapter-stripe)
crates=("${crates[@]/#/payments-}")
packages=()
for crate in "${crates[@]}"; do
  packages+=(-p "$crate")
done
