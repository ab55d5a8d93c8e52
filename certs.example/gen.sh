#!/usr/bin/env bash
# Regenerates the DEVELOPMENT-ONLY certificates in this folder: a throwaway CA, a server
# certificate for localhost/127.0.0.1/::1, and a client certificate for mTLS tests.
# Never use these files in production: the private keys are public (they are in git).
set -euo pipefail
cd "$(dirname "$0")"
days=3650

openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days "$days" -subj "/CN=mcp-edge DEV CA (do not trust)" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt

issue() { # name subject extensions
  openssl ecparam -name prime256v1 -genkey -noout -out "$1.key.ec"
  openssl pkcs8 -topk8 -nocrypt -in "$1.key.ec" -out "$1.key" && rm "$1.key.ec"
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  printf '%s\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days "$days" -sha256 \
    -extfile "$1.ext" -out "$1.crt"
  rm "$1.csr" "$1.ext"
}

issue server "/CN=localhost" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"

issue client "/CN=mcp-edge dev client" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

# The server presents its chain: leaf then CA.
cat server.crt ca.crt > server-chain.crt
rm -f ca.srl
echo "wrote DEV certificates to $(pwd)"
