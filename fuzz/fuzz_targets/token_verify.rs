//! JWT access tokens and API keys at the gateway (`authenticate.rs`'s `TokenVerifier`),
//! against a runtime state with a published ES256 key, a third-party key manager with its
//! own JWKS, an application, its key mappings and a revocation.
//!
//! Tokens come as raw bytes, or signed here with a real key over a header and claims the
//! fuzzer writes. A token is accepted only if it was signed with a key the state trusts,
//! for the kind asked, unexpired and unrevoked; the same token with its signature altered
//! is refused.
#![no_main]

use arbitrary::Arbitrary;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;
use tollgate_gateway::TokenVerifier;
use tollgate_gateway::runtime::RuntimeState;
use tollgate_model::token::TokenKind;

const ISSUER: &str = "https://idp.example";

struct World {
    published: EcdsaKeyPair,
    external: EcdsaKeyPair,
    state: RuntimeState,
}

fn jwk(key: &EcdsaKeyPair, kid: &str) -> Value {
    // Uncompressed point: 0x04, then X and Y.
    let point = key.public_key().as_ref();
    json!({
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
        "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
    })
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let rng = SystemRandom::new();
    let key = || {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap_or_else(|e| panic!("a key: {e}"));
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
            .unwrap_or_else(|e| panic!("a key: {e}"))
    };
    let (published, external) = (key(), key());
    let snapshot = json!({
        "seq": 1, "environment": "Default", "apis": [],
        "applications": [{"id": "app1", "name": "App", "owner": "alice", "tier": "Unlimited",
                          "tokenType": "JWT", "status": "APPROVED"}],
        "subscriptions": [],
        "keyMappings": [
            {"consumerKey": "ck1", "applicationId": "app1", "keyType": "PRODUCTION", "keyManager": "Resident Key Manager"},
            {"consumerKey": "ck-ext", "applicationId": "app1", "keyType": "SANDBOX", "keyManager": "External"},
        ],
        "revocations": [{"revocationType": "jti", "subject": "revoked-jti", "expiresAt": i64::MAX / 2, "revokedAt": 0}],
        "signingKeys": [jwk(&published, "k1")],
        "keyManagers": [{"id": "km1", "name": "External", "enabled": true, "issuer": ISSUER,
                         "jwks": {"keys": [jwk(&external, "ext")]}}],
    });
    let snapshot = serde_json::from_value(snapshot).unwrap_or_else(|e| panic!("the snapshot: {e}"));
    World {
        published,
        external,
        state: RuntimeState::from_snapshot(snapshot),
    }
});

#[derive(Arbitrary, Debug)]
enum Header<'a> {
    Proper { alg: u8, kid: u8, typ: bool },
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Claims<'a> {
    Shaped {
        iss: Option<u8>,
        sub: Option<&'a str>,
        exp_from_now: Option<i32>,
        iat: Option<i64>,
        jti: Option<&'a str>,
        scope: Option<&'a str>,
        client_id: Option<u8>,
        keytype: u8,
        token_type: u8,
        application: bool,
        extra: Option<(&'a str, &'a str)>,
    },
    Raw(&'a str),
}

#[derive(Arbitrary, Debug)]
enum Token<'a> {
    Raw(&'a [u8]),
    Signed {
        external: bool,
        header: Header<'a>,
        claims: Claims<'a>,
        tamper: u16,
    },
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    api_key: bool,
    token: Token<'a>,
}

const ALGS: [&str; 7] = ["ES256", "RS256", "HS256", "none", "ES384", "EdDSA", "PS256"];
const KIDS: [&str; 4] = ["k1", "ext", "unknown", ""];

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

fn header_json(h: &Header<'_>) -> String {
    match h {
        Header::Proper { alg, kid, typ } => {
            let mut m = Map::new();
            m.insert("alg".into(), json!(pick(&ALGS, *alg)));
            m.insert("kid".into(), json!(pick(&KIDS, *kid)));
            if *typ {
                m.insert("typ".into(), json!("JWT"));
            }
            Value::Object(m).to_string()
        }
        Header::Raw(s) => (*s).to_string(),
    }
}

fn claims_json(c: &Claims<'_>, now: i64) -> String {
    let Claims::Shaped {
        iss,
        sub,
        exp_from_now,
        iat,
        jti,
        scope,
        client_id,
        keytype,
        token_type,
        application,
        extra,
    } = c
    else {
        let Claims::Raw(s) = c else { unreachable!() };
        return (*s).to_string();
    };
    let mut m = Map::new();
    let mut put = |k: &str, v: Value| {
        m.insert(k.into(), v);
    };
    if let Some(i) = iss {
        put("iss", json!(pick(&[ISSUER, "tollgate", ""], *i)));
    }
    if let Some(s) = sub {
        put("sub", json!(s));
    }
    if let Some(e) = exp_from_now {
        put("exp", json!(now + i64::from(*e)));
    }
    if let Some(i) = iat {
        put("iat", json!(i));
        put("nbf", json!(i));
    }
    put("aud", json!("ck1"));
    if let Some(j) = jti {
        put("jti", json!(j));
    }
    if let Some(s) = scope {
        put("scope", json!(s));
    }
    if let Some(c) = client_id {
        let id = pick(&["ck1", "ck-ext", "nobody"], *c);
        put("client_id", json!(id));
        put("azp", json!(id));
    }
    put("keytype", json!(pick(&["PRODUCTION", "SANDBOX", "other"], *keytype)));
    put(
        "token_type",
        json!(pick(&["access_token", "apiKey", "refresh"], *token_type)),
    );
    if *application {
        put(
            "application",
            json!({"id": "app1", "name": "App", "tier": "Unlimited", "owner": "alice"}),
        );
    }
    if let Some((k, v)) = extra {
        put(k, json!(v));
    }
    Value::Object(m).to_string()
}

fn verify(token: &[u8], kind: TokenKind, now_millis: i64) -> Result<tollgate_model::token::AccessClaims, String> {
    let verifier = TokenVerifier::new();
    tollgate_fuzz::block_on(verifier.verify(&WORLD.state, token, kind, None, now_millis))
        .map(|c| (*c).clone())
        .map_err(|e| format!("{e:?}"))
}

fuzz_target!(|input: Input<'_>| {
    let world = &*WORLD;
    let kind = if input.api_key {
        TokenKind::ApiKey
    } else {
        TokenKind::AccessToken
    };
    let now_millis = tollgate_model::now_millis();
    match &input.token {
        Token::Raw(bytes) => {
            // Nothing signed here: nothing the state trusts.
            if let Ok(claims) = verify(bytes, kind, now_millis) {
                panic!("an unsigned token was accepted: {claims:?}");
            }
        }
        Token::Signed {
            external,
            header,
            claims,
            tamper,
        } => {
            let key = if *external { &world.external } else { &world.published };
            let signed = format!(
                "{}.{}",
                B64.encode(header_json(header)),
                B64.encode(claims_json(claims, now_millis / 1000))
            );
            let signature = key
                .sign(&SystemRandom::new(), signed.as_bytes())
                .unwrap_or_else(|e| panic!("signing: {e}"));
            let token = format!("{signed}.{}", B64.encode(signature.as_ref()));
            if let Ok(claims) = verify(token.as_bytes(), kind, now_millis) {
                assert!(claims.exp > now_millis / 1000, "expired yet accepted");
                assert_eq!(claims.token_type, kind, "accepted for the wrong kind");
                assert_ne!(claims.jti, "revoked-jti", "revoked yet accepted");
                // Its signature altered, the same token is refused.
                let mut altered = token.into_bytes();
                let start = signed.len() + 1;
                let at = start + usize::from(*tamper) % (altered.len() - start - 1);
                altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
                if let Ok(c) = verify(&altered, kind, now_millis) {
                    panic!("an altered signature was accepted: {c:?}");
                }
            }
        }
    }
});
