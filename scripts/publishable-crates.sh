# The crates meant for other Rust projects, sourced by check-package.sh and check-semver.sh so
# that both check the same list: `crates` names them, `packages` holds cargo's `-p` arguments.
crates=(domain application stripe-signature adapter-memory adapter-postgres adapter-redis adapter-auth
  adapter-webhooks adapter-monnify adapter-paystack adapter-simulated-gateway adapter-stripe)
packages=()
for crate in "${crates[@]}"; do
  packages+=(-p "$crate")
done
