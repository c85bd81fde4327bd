#include "tls_test_certificates.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>
#include <stdexcept>

namespace daemonkit::core::tls_test {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using Key = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("making test certificates: ") + what);
}

Key new_key() {
  Key key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EVP_EC_gen");
  return key;
}

void extend(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  check(X509_add_ext(cert, ext, -1) == 1, "X509_add_ext");
  X509_EXTENSION_free(ext);
}

struct Spec {
  const char* common_name;
  const char* alt_names = nullptr;  // subjectAltName, e.g. "DNS:localhost"
  bool authority = false;
  // Absolute, so that the fake kernel's clock (2023-11-14 unless a test moves it) and the real
  // one (for the _linux tests) both fall inside: 2023-01-01 to 2036-01-01.
  time_t not_before = 1'672'531'200;
  time_t not_after = 2'082'758'400;
  bool client = false;
};

// `issuer` null: self-signed with `key`.
Cert make(const Spec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  static long serial = 1;
  Cert cert(X509_new());
  check(cert != nullptr, "X509_new");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), spec.not_before);
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), spec.not_after);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("daemonkit"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.common_name), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (spec.authority) {
    extend(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    extend(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    extend(cert.get(), signer, NID_subject_key_identifier, "hash");
  } else {
    extend(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    extend(cert.get(), signer, NID_key_usage, "critical,digitalSignature");
    extend(cert.get(), signer, NID_ext_key_usage, spec.client ? "clientAuth" : "serverAuth");
  }
  if (spec.alt_names != nullptr) {
    extend(cert.get(), signer, NID_subject_alt_name, spec.alt_names);
  }
  check(X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0,
        "X509_sign");
  return cert;
}

std::string pem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  check(PEM_write_bio_X509(bio, cert) == 1, "PEM_write_bio_X509");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return text;
}

std::string pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  check(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return text;
}

KeyPair signed_by(const Spec& spec, X509* ca, EVP_PKEY* ca_key) {
  Key key = new_key();
  Cert cert = make(spec, key.get(), ca, ca_key);
  return {pem(cert.get()), pem(key.get())};
}

TestCertificates make_all() {
  TestCertificates all;
  Key ca_key = new_key();
  Cert ca =
      make({.common_name = "daemonkit test CA", .authority = true}, ca_key.get(), nullptr, nullptr);
  all.authority = {pem(ca.get()), pem(ca_key.get())};
  all.localhost = signed_by({.common_name = "localhost", .alt_names = "DNS:localhost,IP:127.0.0.1"},
                            ca.get(), ca_key.get());
  all.expired = signed_by({.common_name = "localhost",
                           .alt_names = "DNS:localhost",
                           .not_before = 1'577'836'800,  // 2020-01-01
                           .not_after = 1'609'459'200},  // 2021-01-01
                          ca.get(), ca_key.get());
  all.other_host = signed_by({.common_name = "example.org", .alt_names = "DNS:example.org"},
                             ca.get(), ca_key.get());
  all.client = signed_by({.common_name = "client one", .client = true}, ca.get(), ca_key.get());
  Key self_key = new_key();
  Cert self = make({.common_name = "localhost", .alt_names = "DNS:localhost"}, self_key.get(),
                   nullptr, nullptr);
  all.self_signed = {pem(self.get()), pem(self_key.get())};
  Key other_ca_key = new_key();
  Cert other_ca =
      make({.common_name = "another CA", .authority = true}, other_ca_key.get(), nullptr, nullptr);
  all.other_authority = {pem(other_ca.get()), pem(other_ca_key.get())};
  return all;
}

}  // namespace

const TestCertificates& certificates() {
  static const TestCertificates all = make_all();
  return all;
}

}  // namespace daemonkit::core::tls_test
