// OpenSSL's libcrypto (the system's, from libssl-dev) for the transport's AES-256-GCM only: one cipher context per
// key, the key expanded once, frames sealed and opened in place. Four small functions so that the Swift side sees
// neither the EVP control codes nor OpenSSL's signed lengths.
#include <openssl/evp.h>
#include <limits.h>

/// A context for AES-256-GCM under the 32-byte key, or NULL when OpenSSL cannot make one.
static inline EVP_CIPHER_CTX *harp_gcm_new(const unsigned char *key) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL) return NULL;
    if (EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, NULL, 1) != 1) {
        EVP_CIPHER_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/// Starts a message under the 12-byte nonce, encrypting (encrypt = 1) or decrypting (0), and takes the associated
/// data. The key stays expanded in the context. 1 on success.
static inline int harp_gcm_begin(EVP_CIPHER_CTX *ctx, const unsigned char *nonce, int encrypt,
                                 const unsigned char *ad, size_t ad_length) {
    if (ad_length > INT_MAX) return 0;
    if (EVP_CipherInit_ex(ctx, NULL, NULL, NULL, nonce, encrypt) != 1) return 0;
    int written = 0;
    if (ad_length > 0 && EVP_CipherUpdate(ctx, NULL, &written, ad, (int)ad_length) != 1) return 0;
    return 1;
}

/// Encrypts or decrypts the next length bytes of the message from in to out (which may be the same bytes). GCM
/// writes as many bytes as it reads, so the message may be cut anywhere. 1 on success.
static inline int harp_gcm_update(EVP_CIPHER_CTX *ctx, const unsigned char *in, unsigned char *out,
                                  size_t length) {
    if (length == 0) return 1;
    if (length > INT_MAX) return 0;
    int written = 0;
    return EVP_CipherUpdate(ctx, out, &written, in, (int)length) == 1 && (size_t)written == length;
}

/// Ends an encrypted message and writes its 16-byte tag. 1 on success.
static inline int harp_gcm_seal_final(EVP_CIPHER_CTX *ctx, unsigned char *tag) {
    int written = 0;
    if (EVP_CipherFinal_ex(ctx, tag, &written) != 1 || written != 0) return 0;
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
}

/// Ends a decrypted message: 1 when the 16-byte tag verifies, 0 when it does not (the bytes written since
/// harp_gcm_begin are then not to be used).
static inline int harp_gcm_open_final(EVP_CIPHER_CTX *ctx, const unsigned char *tag) {
    unsigned char expected[16];
    for (int i = 0; i < 16; i++) expected[i] = tag[i];
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, expected) != 1) return 0;
    unsigned char none[16];
    int written = 0;
    return EVP_CipherFinal_ex(ctx, none, &written) == 1 && written == 0;
}
