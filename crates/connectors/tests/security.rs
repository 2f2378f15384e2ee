//! The security and encoding steps, through pipelines. Keys under
//! `tests/keys/` were made for these tests only.

#![cfg(feature = "security")]
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use serde_json::{Value, json};
use sluice_engine::{FlowError, RunOptions, load_str};
use sluice_spec::Format;

const RSA_PRIVATE: &str = include_str!("keys/rsa-private.pem");
const RSA_PUBLIC: &str = include_str!("keys/rsa-public.pem");
const EC_PRIVATE: &str = include_str!("keys/ec-private.pem");
const EC_PUBLIC: &str = include_str!("keys/ec-public.pem");

/// 32 bytes, base64: an AES-256 key.
const AES_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

fn accounts() -> Value {
    json!({
        "signing": {"type": "generic", "secret": "s3cr3t-signing-key"},
        "rsa": {"type": "private-key", "private": RSA_PRIVATE, "public": RSA_PUBLIC},
        "ec": {"type": "private-key", "private": EC_PRIVATE, "public": EC_PUBLIC},
        "vault": {"type": "generic", "key": AES_KEY},
    })
}

async fn run(yaml: &str, input: Value) -> Result<Value, FlowError> {
    let catalog = sluice_connectors::catalog();
    let plan =
        load_str("t.yaml", yaml, Format::Yaml, None, &catalog).unwrap_or_else(|e| panic!("{e}"));
    let options = RunOptions {
        accounts: Arc::new(accounts()),
        ..RunOptions::default()
    };
    plan.execute(input, options).await.into_result()
}

async fn ok(yaml: &str, input: Value) -> Value {
    run(yaml, input)
        .await
        .unwrap_or_else(|e| panic!("{}", e.to_value()))
}

async fn err(yaml: &str, input: Value) -> FlowError {
    match run(yaml, input).await {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e,
    }
}

fn one(step: &str) -> String {
    format!("name: t\nsteps:\n{step}")
}

#[tokio::test]
async fn base64_encodes_and_decodes() {
    let encode = one("  - type: base64\n    value: \"{{ message.text }}\"\n");
    assert_eq!(ok(&encode, json!({"text": "héllo?"})).await, "aMOpbGxvPw==");
    let url = one("  - type: base64\n    value: \"{{ message.text }}\"\n    urlSafe: true\n");
    assert_eq!(ok(&url, json!({"text": "héllo?"})).await, "aMOpbGxvPw");
    // Objects are encoded as their JSON text; decoding gives it back.
    let round =
        one("  - type: base64\n  - type: base64\n    operation: decode\n    output: json\n");
    assert_eq!(ok(&round, json!({"a": [1, 2]})).await, json!({"a": [1, 2]}));
    let decode = one("  - type: base64\n    operation: decode\n");
    assert_eq!(ok(&decode, json!("aMOpbGxvPw")).await, "héllo?");
    assert_eq!(ok(&decode, json!("aMOp bGxv\nPw==")).await, "héllo?");
    let e = err(&decode, json!("not base64!")).await;
    assert_eq!((e.code.as_ref(), e.status), ("base64", 400));
    assert!(e.message.contains("not base64"), "{}", e.message);
    // Bytes that are not UTF-8 need `output: base64`.
    let e = err(&decode, json!("/w==")).await;
    assert!(e.message.contains("output: base64"), "{}", e.message);
}

#[tokio::test]
async fn hash_gives_the_known_digests() {
    let hash = |algorithm: &str| {
        one(&format!(
            "  - type: hash\n    algorithm: {algorithm}\n    value: \"{{{{ message.s }}}}\"\n"
        ))
    };
    let abc = json!({"s": "abc"});
    assert_eq!(
        ok(&hash("md5"), abc.clone()).await,
        "900150983cd24fb0d6963f7d28e17f72"
    );
    assert_eq!(
        ok(&hash("sha1"), abc.clone()).await,
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        ok(&hash("sha256"), abc.clone()).await,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let sha512 = ok(&hash("sha512"), abc.clone()).await;
    assert!(
        sha512.as_str().unwrap().starts_with("ddaf35a193617aba"),
        "{sha512}"
    );
    let b64 = one("  - type: hash\n    value: abc\n    encoding: base64\n");
    assert_eq!(
        ok(&b64, json!({})).await,
        "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
    );
    // Binary input given as base64: "abc" is YWJj.
    let binary = one("  - type: hash\n    value: YWJj\n    inputEncoding: base64\n");
    assert_eq!(
        ok(&binary, json!({})).await,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[tokio::test]
async fn hmac_signs_and_checks_in_constant_time() {
    // RFC 4231, test case 2.
    let sign = one("  - type: hmac\n    key: Jefe\n    value: \"what do ya want for nothing?\"\n");
    let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    assert_eq!(ok(&sign, json!({})).await, expected);
    let check = one(
        "  - type: hmac\n    key: Jefe\n    value: \"what do ya want for nothing?\"\n    expected: \"{{ message.signature }}\"\n",
    );
    assert_eq!(
        ok(&check, json!({"signature": expected})).await,
        json!({"valid": true})
    );
    assert_eq!(
        ok(&check, json!({"signature": expected.replace('5', "6")})).await,
        json!({"valid": false})
    );
    assert_eq!(
        ok(&check, json!({"signature": "zz"})).await,
        json!({"valid": false})
    );
    // A webhook check: the key from an account, the body as sent.
    let webhook = one(
        "  - type: hmac\n    algorithm: sha512\n    key: \"{{ account.signing.secret }}\"\n    value: \"{{ message.body }}\"\n    encoding: base64\n",
    );
    let signature = ok(&webhook, json!({"body": "{\"id\":1}"})).await;
    assert_eq!(signature.as_str().unwrap().len(), 88);
    let e = err(
        &one("  - type: hmac\n    key: \"{{ message.none }}\"\n"),
        json!({}),
    )
    .await;
    assert!(e.message.contains("key is empty"), "{}", e.message);
}

#[tokio::test]
async fn encrypt_then_decrypt_gives_the_value_back_and_refuses_tampering() {
    let pipeline = one(
        "  - type: encrypt\n    key: \"{{ account.vault.key }}\"\n    aad: order-1\n  - type: decrypt\n    key: \"{{ account.vault.key }}\"\n    aad: order-1\n    output: json\n",
    );
    let value = json!({"card": "4111 1111 1111 1111", "cvv": "123"});
    assert_eq!(ok(&pipeline, value.clone()).await, value);
    let encrypt = one("  - type: encrypt\n    key: \"{{ account.vault.key }}\"\n");
    let a = ok(&encrypt, json!("secret")).await;
    let b = ok(&encrypt, json!("secret")).await;
    assert_ne!(a, b, "every encryption has its own nonce");
    let decrypt = one("  - type: decrypt\n    key: \"{{ account.vault.key }}\"\n");
    assert_eq!(ok(&decrypt, a.clone()).await, "secret");
    // Altered ciphertext, another key, or another aad: refused.
    let mut bytes: Vec<char> = a.as_str().unwrap().chars().collect();
    bytes[20] = if bytes[20] == 'A' { 'B' } else { 'A' };
    let altered: String = bytes.into_iter().collect();
    let e = err(&decrypt, json!(altered)).await;
    assert_eq!((e.code.as_ref(), e.status), ("decrypt", 400));
    assert!(e.message.contains("altered"), "{}", e.message);
    let other_key =
        one("  - type: decrypt\n    key: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
    assert_eq!(err(&other_key, a.clone()).await.code, "decrypt");
    let other_aad = one("  - type: decrypt\n    key: \"{{ account.vault.key }}\"\n    aad: x\n");
    assert_eq!(err(&other_aad, a.clone()).await.code, "decrypt");
    let short_key = one("  - type: encrypt\n    key: c2hvcnQ=\n");
    let e = err(&short_key, json!("x")).await;
    assert!(e.message.contains("16 or 32"), "{}", e.message);
    // AES-128 works too.
    let aes128 = one(
        "  - type: encrypt\n    key: AAECAwQFBgcICQoLDA0ODw==\n  - type: decrypt\n    key: AAECAwQFBgcICQoLDA0ODw==\n",
    );
    assert_eq!(ok(&aes128, json!("hi")).await, "hi");
}

fn jwt_round(alg: &str, sign_key: &str, verify_key: &str) -> String {
    one(&format!(
        "  - type: jwt\n    algorithm: {alg}\n    key: \"{sign_key}\"\n    claims: {{ sub: \"{{{{ message.user }}}}\", role: admin }}\n    expiresIn: 5m\n    keyId: k1\n  - type: jwt\n    operation: verify\n    algorithm: {alg}\n    key: \"{verify_key}\"\n"
    ))
}

#[tokio::test]
async fn jwt_signs_and_verifies_with_hs256_rs256_and_es256() {
    for (alg, sign, verify) in [
        (
            "HS256",
            "{{ account.signing.secret }}",
            "{{ account.signing.secret }}",
        ),
        (
            "HS512",
            "{{ account.signing.secret }}",
            "{{ account.signing.secret }}",
        ),
        (
            "RS256",
            "{{ account.rsa.private }}",
            "{{ account.rsa.public }}",
        ),
        (
            "ES256",
            "{{ account.ec.private }}",
            "{{ account.ec.public }}",
        ),
    ] {
        let claims = ok(&jwt_round(alg, sign, verify), json!({"user": "ada"})).await;
        assert_eq!(claims["sub"], "ada", "{alg}");
        assert_eq!(claims["role"], "admin", "{alg}");
        let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
        assert_eq!(lifetime, 300, "{alg}");
    }
    // The header carries the algorithm and key id.
    let sign = one(
        "  - type: jwt\n    algorithm: RS256\n    key: \"{{ account.rsa.private }}\"\n    claims: { sub: x }\n    keyId: k1\n",
    );
    let token = ok(&sign, json!({})).await;
    let header = one("  - type: base64\n    operation: decode\n    output: json\n");
    let header_json = ok(
        &header,
        json!(token.as_str().unwrap().split('.').next().unwrap()),
    )
    .await;
    assert_eq!(
        header_json,
        json!({"typ": "JWT", "alg": "RS256", "kid": "k1"})
    );
}

#[tokio::test]
async fn jwt_refuses_bad_tokens_with_the_reason() {
    let sign = |claims: &str| {
        one(&format!(
            "  - type: jwt\n    key: \"{{{{ account.signing.secret }}}}\"\n    claims: {claims}\n"
        ))
    };
    let verify = |extra: &str| {
        one(&format!(
            "  - type: jwt\n    operation: verify\n    key: \"{{{{ account.signing.secret }}}}\"\n    token: \"{{{{ message.token }}}}\"\n{extra}"
        ))
    };
    let now = jsonwebtoken::get_current_timestamp();
    let token = |claims: String| {
        let sign = sign(&claims);
        async move { ok(&sign, json!({})).await }
    };
    let expired = token(format!("{{ sub: a, exp: {} }}", now - 10)).await;
    let e = err(&verify(""), json!({"token": expired})).await;
    assert_eq!((e.code.as_ref(), e.status), ("jwt", 401));
    assert!(e.message.contains("expired"), "{}", e.message);
    let leeway = verify("    leeway: 1m\n");
    assert_eq!(ok(&leeway, json!({"token": expired})).await["sub"], "a");
    let early = token(format!(
        "{{ sub: a, exp: {}, nbf: {} }}",
        now + 600,
        now + 300
    ))
    .await;
    let e = err(&verify(""), json!({"token": early})).await;
    assert!(e.message.contains("not valid yet"), "{}", e.message);
    let no_exp = token("{ sub: a }".into()).await;
    let e = err(&verify(""), json!({"token": no_exp})).await;
    assert!(e.message.contains("'exp'"), "{}", e.message);
    assert_eq!(
        ok(&verify("    requireExp: false\n"), json!({"token": no_exp})).await["sub"],
        "a"
    );
    let good = token(format!(
        "{{ sub: a, exp: {}, iss: shop, aud: api }}",
        now + 600
    ))
    .await;
    let bearer = json!({"token": format!("Bearer {}", good.as_str().unwrap())});
    assert_eq!(ok(&verify(""), bearer.clone()).await["iss"], "shop");
    assert_eq!(
        ok(
            &verify("    issuer: shop\n    audience: api\n"),
            bearer.clone()
        )
        .await["aud"],
        "api"
    );
    let e = err(&verify("    issuer: bank\n"), bearer.clone()).await;
    assert!(e.message.contains("issuer"), "{}", e.message);
    let e = err(&verify("    audience: web\n"), bearer.clone()).await;
    assert!(e.message.contains("audience"), "{}", e.message);
    // Another secret, a changed payload, another algorithm, garbage.
    let other = one(
        "  - type: jwt\n    operation: verify\n    key: other\n    token: \"{{ message.token }}\"\n",
    );
    let e = err(&other, bearer.clone()).await;
    assert!(e.message.contains("signature"), "{}", e.message);
    let parts: Vec<&str> = good.as_str().unwrap().split('.').collect();
    let forged = format!(
        "{}.eyJzdWIiOiJyb290IiwiZXhwIjo5OTk5OTk5OTk5fQ.{}",
        parts[0], parts[2]
    );
    let e = err(&verify(""), json!({"token": forged})).await;
    assert!(e.message.contains("signature"), "{}", e.message);
    let rs = one(
        "  - type: jwt\n    operation: verify\n    algorithm: RS256\n    key: \"{{ account.rsa.public }}\"\n    token: \"{{ message.token }}\"\n",
    );
    let e = err(&rs, bearer).await;
    assert_eq!(e.status, 401, "{}", e.message);
    let e = err(&verify(""), json!({"token": "not.a.jwt"})).await;
    assert_eq!(e.status, 401);
    // A key that does not fit the algorithm is a 400, not a refused token.
    let bad_key =
        one("  - type: jwt\n    algorithm: RS256\n    key: not-a-pem\n    claims: { a: 1 }\n");
    let e = err(&bad_key, json!({})).await;
    assert_eq!(e.status, 400, "{}", e.message);
}

#[tokio::test]
async fn gzip_then_gunzip_gives_the_text_back_and_bounds_the_size() {
    let round = one("  - type: gzip\n  - type: gunzip\n    output: json\n");
    let value = json!({"lines": ["a".repeat(1000), "b".repeat(1000)]});
    assert_eq!(ok(&round, value.clone()).await, value);
    let gzip = one("  - type: gzip\n    level: 9\n");
    let compressed = ok(&gzip, json!("x".repeat(100_000))).await;
    assert!(compressed.as_str().unwrap().len() < 1000);
    let bomb = one("  - type: gunzip\n    maxSize: 10KB\n");
    let e = err(&bomb, compressed).await;
    assert_eq!((e.code.as_ref(), e.status), ("gunzip", 400));
    assert!(e.message.contains("maxSize"), "{}", e.message);
    let e = err(&one("  - type: gunzip\n"), json!("aGVsbG8=")).await;
    assert!(e.message.contains("not gzip"), "{}", e.message);
}

#[test]
fn bad_configs_are_refused_at_load_with_the_field() {
    let catalog = sluice_connectors::catalog();
    for (yaml, path) in [
        (
            one("  - type: hash\n    algorithm: sha3\n"),
            "steps[0].algorithm",
        ),
        (one("  - type: gzip\n    level: 12\n"), "steps[0].level"),
        (
            one("  - type: jwt\n    algorithm: none\n    key: x\n"),
            "steps[0].algorithm",
        ),
        (one("  - type: hmac\n    value: x\n"), "steps[0]"),
    ] {
        let e = load_str("t.yaml", &yaml, Format::Yaml, None, &catalog).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(path), "{path} not in {text}");
    }
}
