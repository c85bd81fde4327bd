// Certificates for the TLS tests, made in-process with OpenSSL when first asked for: an
// authority, leaves it signed (for "localhost" and 127.0.0.1, for another host, expired, a
// client's), and a self-signed leaf. No key material lives in the repository.
#pragma once

#include <string>

namespace daemonkit::core::tls_test {

struct KeyPair {
  std::string certificate;  // PEM
  std::string key;          // PEM (PKCS#8)
};

struct TestCertificates {
  KeyPair authority;        // CN=daemonkit test CA
  KeyPair localhost;        // CN=localhost, DNS:localhost, IP:127.0.0.1, signed by authority
  KeyPair expired;          // as localhost, but its validity ended yesterday
  KeyPair other_host;       // CN=example.org, DNS:example.org, signed by authority
  KeyPair self_signed;      // CN=localhost, DNS:localhost, signed by itself
  KeyPair client;           // CN=client one, signed by authority
  KeyPair other_authority;  // a second CA that signed none of the above
};

// Made once per process (EC P-256 keys: fast, and allowed at security level 2).
const TestCertificates& certificates();

}  // namespace daemonkit::core::tls_test
