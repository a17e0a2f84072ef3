//! Passkey ceremonies end to end against a software authenticator: the JSON the server
//! sends, the JSON a browser posts back, and every refusal the issue asks for.

use auth_domain::{
    factors::{Ceremony, CredentialId, StoredPasskey},
    passkeys::{
        challenge_digest_of, credential_id_of, identify, CeremonyState, NewPasskey, PasskeyError,
        RelyingParty, CEREMONY_TIMEOUT, MIN_CHALLENGE_BYTES,
    },
    UserId,
};
use auth_testkit::authenticator::SoftAuthenticator;
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::{json, Value};
use time::macros::datetime;
use url::Url;
use uuid::Uuid;

fn origin() -> Url {
    Url::parse("http://localhost:8080").unwrap()
}

fn relying_party() -> RelyingParty {
    RelyingParty::from_public_url(&origin()).unwrap()
}

/// A passkey of `user` as the server stores it.
fn stored_passkey(user: UserId, new: NewPasskey) -> StoredPasskey {
    StoredPasskey {
        id: Uuid::now_v7(),
        user_id: user,
        credential_id: new.credential_id,
        name: "laptop".into(),
        key: new.key,
        created_at: datetime!(2030-01-01 00:00 UTC),
        last_used_at: None,
    }
}

/// Registers a passkey of `user` on `authenticator`, as the server would store it.
fn register(
    rp: &RelyingParty,
    authenticator: &mut SoftAuthenticator,
    user: UserId,
) -> StoredPasskey {
    let (options, state) = rp
        .start_registration(user, "ada@example.com", "Ada", &[])
        .unwrap();
    let credential = authenticator.register(&options, &origin());
    let new = rp.finish_registration(&state, &credential).unwrap();
    stored_passkey(user, new)
}

fn challenge_bytes(options: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(options["publicKey"]["challenge"].as_str().unwrap())
        .unwrap()
}

#[test]
fn registration_options_are_webauthn_json_for_a_discoverable_verified_passkey() {
    let rp = relying_party();
    let user = UserId::generate();
    let excluded = CredentialId::from_stored(URL_SAFE_NO_PAD.encode([7u8; 16]));
    let (options, state) = rp
        .start_registration(
            user,
            "ada@example.com",
            "Ada",
            std::slice::from_ref(&excluded),
        )
        .unwrap();
    let public_key = &options["publicKey"];
    assert_eq!(public_key["rp"]["id"], "localhost");
    assert_eq!(
        public_key["user"]["id"],
        URL_SAFE_NO_PAD.encode(user.as_uuid().as_bytes()),
        "the user handle is the user's UUID bytes"
    );
    assert_eq!(public_key["user"]["name"], "ada@example.com");
    assert_eq!(public_key["user"]["displayName"], "Ada");
    assert_eq!(public_key["attestation"], "none");
    assert_eq!(public_key["timeout"], CEREMONY_TIMEOUT.as_millis() as u64);
    assert_eq!(public_key["timeout"], 300_000);
    let selection = &public_key["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["requireResidentKey"], true);
    assert_eq!(selection["userVerification"], "required");
    assert_eq!(public_key["excludeCredentials"][0]["id"], excluded.as_str());
    assert!(challenge_bytes(&options).len() >= MIN_CHALLENGE_BYTES);
    assert_eq!(state.ceremony(), Ceremony::Registration);
    assert_eq!(state.user(), Some(user));
}

#[test]
fn sign_in_options_allow_any_credential_and_require_user_verification() {
    let (options, state) = relying_party().start_sign_in().unwrap();
    let public_key = &options["publicKey"];
    assert_eq!(public_key["allowCredentials"], json!([]));
    assert_eq!(public_key["userVerification"], "required");
    assert_eq!(public_key["rpId"], "localhost");
    assert_eq!(public_key["timeout"], 300_000);
    assert_eq!(
        options.get("mediation"),
        None,
        "a button, not autofill, by default"
    );
    assert!(challenge_bytes(&options).len() >= MIN_CHALLENGE_BYTES);
    assert_eq!(state.ceremony(), Ceremony::SignIn);
    assert_eq!(state.user(), None);
}

#[test]
fn challenges_are_at_least_32_random_bytes() {
    let rp = relying_party();
    let (first, _) = rp.start_sign_in().unwrap();
    let (second, _) = rp.start_sign_in().unwrap();
    assert!(challenge_bytes(&first).len() >= 32);
    assert_ne!(challenge_bytes(&first), challenge_bytes(&second));
}

#[test]
fn a_registered_passkey_signs_in_without_a_username() {
    let rp = relying_party();
    let mut authenticator = SoftAuthenticator::new();
    let user = UserId::generate();
    let passkey = register(&rp, &mut authenticator, user);
    assert_eq!(
        authenticator.credential_ids(),
        [passkey.credential_id.as_str()]
    );

    let (options, state) = rp.start_sign_in().unwrap();
    let credential = authenticator.sign_in(&options, &origin());
    assert_eq!(
        identify(&credential).unwrap(),
        (user, passkey.credential_id.clone()),
        "the assertion names its user and passkey before any key is looked up"
    );
    let assertion = rp.finish_sign_in(&state, &credential, &passkey).unwrap();
    assert_eq!(assertion.user_id, user);
    assert_eq!(assertion.credential_id, passkey.credential_id);
    assert!(assertion.key_changed, "the signature counter advanced");

    // The key as stored back signs in again; the key as it was is now behind.
    let updated = StoredPasskey {
        key: assertion.key,
        ..passkey
    };
    let (options, state) = rp.start_sign_in().unwrap();
    let credential = authenticator.sign_in(&options, &origin());
    rp.finish_sign_in(&state, &credential, &updated).unwrap();
}

#[test]
fn a_passkey_is_a_second_factor_for_its_user() {
    let rp = relying_party();
    let mut authenticator = SoftAuthenticator::new();
    let user = UserId::generate();
    let first = register(&rp, &mut authenticator, user);
    let second = register(&rp, &mut authenticator, user);

    let (options, state) = rp
        .start_second_factor(user, &[first.clone(), second.clone()])
        .unwrap();
    let allowed: Vec<&str> = options["publicKey"]["allowCredentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|descriptor| descriptor["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        allowed,
        [first.credential_id.as_str(), second.credential_id.as_str()]
    );
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert_eq!(state.ceremony(), Ceremony::SecondFactor);
    assert_eq!(state.user(), Some(user));

    let credential = authenticator.sign_in(&options, &origin());
    assert_eq!(credential_id_of(&credential).unwrap(), first.credential_id);
    let assertion = rp
        .finish_second_factor(&state, &credential, &first)
        .unwrap();
    assert_eq!(assertion.user_id, user);
    assert_eq!(assertion.credential_id, first.credential_id);
}

#[test]
fn a_second_factor_for_nobody_or_for_another_user_does_not_start() {
    let rp = relying_party();
    let mut authenticator = SoftAuthenticator::new();
    let theirs = register(&rp, &mut authenticator, UserId::generate());
    assert!(matches!(
        rp.start_second_factor(UserId::generate(), &[]),
        Err(PasskeyError::UnknownKey)
    ));
    assert!(matches!(
        rp.start_second_factor(UserId::generate(), &[theirs]),
        Err(PasskeyError::UnknownKey)
    ));
}

#[test]
fn a_replayed_assertion_is_refused_by_the_next_ceremony() {
    let rp = relying_party();
    let mut authenticator = SoftAuthenticator::new();
    let user = UserId::generate();
    let passkey = register(&rp, &mut authenticator, user);

    let (options, state) = rp.start_sign_in().unwrap();
    let credential = authenticator.sign_in(&options, &origin());
    rp.finish_sign_in(&state, &credential, &passkey).unwrap();
    let (_, next) = rp.start_sign_in().unwrap();
    assert!(matches!(
        rp.finish_sign_in(&next, &credential, &passkey),
        Err(PasskeyError::ChallengeMismatch)
    ));
    assert_ne!(
        challenge_digest_of(&credential).unwrap(),
        next.challenge_digest()
    );

    let (options, state) = rp
        .start_second_factor(user, std::slice::from_ref(&passkey))
        .unwrap();
    let credential = authenticator.sign_in(&options, &origin());
    rp.finish_second_factor(&state, &credential, &passkey)
        .unwrap();
    let (_, next) = rp
        .start_second_factor(user, std::slice::from_ref(&passkey))
        .unwrap();
    assert!(matches!(
        rp.finish_second_factor(&next, &credential, &passkey),
        Err(PasskeyError::ChallengeMismatch)
    ));
}

#[test]
fn an_assertion_without_user_verification_is_refused() {
    let rp = relying_party();
    let mut authenticator = SoftAuthenticator::new();
    let user = UserId::generate();
    let passkey = register(&rp, &mut authenticator, user);
    authenticator.set_user_verification(false);

    let (options, state) = rp.start_sign_in().unwrap();
    let credential = authenticator.sign_in(&options, &origin());
    assert!(matches!(
        rp.finish_sign_in(&state, &credential, &passkey),
        Err(PasskeyError::UserVerificationMissing)
    ));

    let (options, state) = rp
        .start_second_factor(user, std::slice::from_ref(&passkey))
        .unwrap();
    let credential = authenticator.sign_in(&options, &origin());
    assert!(matches!(
        rp.finish_second_factor(&state, &credential, &passkey),
        Err(PasskeyError::UserVerificationMissing)
    ));
}

#[test]
fn a_registration_without_user_verification_is_refused() {
    let rp = relying_party();
    let mut authenticator = SoftAuthenticator::new();
    authenticator.set_user_verification(false);
    let (options, state) = rp
        .start_registration(UserId::generate(), "ada", "Ada", &[])
        .unwrap();
    let credential = authenticator.register(&options, &origin());
    assert!(matches!(
        rp.finish_registration(&state, &credential),
        Err(PasskeyError::UserVerificationMissing)
    ));
}

#[test]
fn an_assertion_by_a_passkey_other_than_the_one_given_is_refused() {
    let rp = relying_party();
    let user = UserId::generate();
    let (mut phone, mut laptop) = (SoftAuthenticator::new(), SoftAuthenticator::new());
    let deleted = register(&rp, &mut phone, user);
    let kept = register(&rp, &mut laptop, user);

    // Options given while both existed; the phone's passkey deleted since: the server
    // finds no stored passkey for its credential id, and any other one is refused.
    let (options, state) = rp
        .start_second_factor(user, &[deleted, kept.clone()])
        .unwrap();
    let credential = phone.sign_in(&options, &origin());
    assert!(matches!(
        rp.finish_second_factor(&state, &credential, &kept),
        Err(PasskeyError::UnknownKey)
    ));

    let (options, state) = rp.start_sign_in().unwrap();
    let credential = phone.sign_in(&options, &origin());
    assert!(matches!(
        rp.finish_sign_in(&state, &credential, &kept),
        Err(PasskeyError::UnknownKey)
    ));
}

#[test]
fn a_passkey_that_names_another_user_is_refused() {
    let rp = relying_party();
    let mut authenticator = SoftAuthenticator::new();
    let passkey = register(&rp, &mut authenticator, UserId::generate());
    let stolen = StoredPasskey {
        user_id: UserId::generate(),
        ..passkey.clone()
    };

    let (options, state) = rp.start_sign_in().unwrap();
    let credential = authenticator.sign_in(&options, &origin());
    assert!(matches!(
        rp.finish_sign_in(&state, &credential, &stolen),
        Err(PasskeyError::UnknownKey)
    ));

    let (options, state) = rp
        .start_second_factor(passkey.user_id, std::slice::from_ref(&passkey))
        .unwrap();
    let credential = authenticator.sign_in(&options, &origin());
    assert!(matches!(
        rp.finish_second_factor(&state, &credential, &stolen),
        Err(PasskeyError::UnknownKey)
    ));
}

#[test]
fn an_answer_from_another_origin_is_refused() {
    let rp = relying_party();
    let elsewhere = Url::parse("http://localhost:9999").unwrap();
    let mut authenticator = SoftAuthenticator::new();
    let user = UserId::generate();

    let (options, state) = rp.start_registration(user, "ada", "Ada", &[]).unwrap();
    let credential = authenticator.register(&options, &elsewhere);
    assert!(matches!(
        rp.finish_registration(&state, &credential),
        Err(PasskeyError::WrongOrigin)
    ));

    let passkey = register(&rp, &mut authenticator, user);
    let (options, state) = rp.start_sign_in().unwrap();
    let credential = authenticator.sign_in(&options, &elsewhere);
    assert!(matches!(
        rp.finish_sign_in(&state, &credential, &passkey),
        Err(PasskeyError::WrongOrigin)
    ));
}

#[test]
fn a_state_reads_back_from_its_stored_form() {
    let rp = relying_party();
    let mut authenticator = SoftAuthenticator::new();
    let user = UserId::generate();

    let (options, state) = rp.start_registration(user, "ada", "Ada", &[]).unwrap();
    let stored = state.to_stored();
    let restored = CeremonyState::from_stored(Ceremony::Registration, &stored).unwrap();
    assert_eq!(restored.challenge_digest(), state.challenge_digest());
    assert_eq!(restored.user(), Some(user));
    assert_eq!(restored.to_stored(), stored);
    let credential = authenticator.register(&options, &origin());
    let new = rp.finish_registration(&restored, &credential).unwrap();
    let passkey = stored_passkey(user, new);

    let (options, state) = rp.start_sign_in().unwrap();
    let pending = state.into_pending(datetime!(2030-01-01 00:00 UTC));
    assert_eq!(pending.ceremony, Ceremony::SignIn);
    assert_eq!(pending.user_id, None);
    let restored = CeremonyState::from_pending(&pending).unwrap();
    let credential = authenticator.sign_in(&options, &origin());
    assert_eq!(challenge_digest_of(&credential).unwrap(), pending.digest);
    rp.finish_sign_in(&restored, &credential, &passkey).unwrap();

    let (options, state) = rp
        .start_second_factor(user, std::slice::from_ref(&passkey))
        .unwrap();
    let pending = state.into_pending(datetime!(2030-01-01 00:00 UTC));
    assert_eq!(pending.ceremony, Ceremony::SecondFactor);
    assert_eq!(pending.user_id, Some(user));
    let restored = CeremonyState::from_pending(&pending).unwrap();
    let credential = authenticator.sign_in(&options, &origin());
    rp.finish_second_factor(&restored, &credential, &passkey)
        .unwrap();
}

#[test]
fn a_stored_state_of_another_ceremony_or_key_does_not_read_back() {
    let rp = relying_party();
    let (_, state) = rp.start_sign_in().unwrap();
    let stored = state.to_stored();
    for ceremony in [Ceremony::Registration, Ceremony::SecondFactor] {
        assert!(matches!(
            CeremonyState::from_stored(ceremony, &stored),
            Err(PasskeyError::Corrupt(_))
        ));
    }
    for garbage in ["", "null", "{}", "[1]", "{\"v\":1}"] {
        assert!(matches!(
            CeremonyState::from_stored(Ceremony::SignIn, garbage),
            Err(PasskeyError::Corrupt(_))
        ));
    }
    let mut pending = state.into_pending(datetime!(2030-01-01 00:00 UTC));
    pending.user_id = Some(UserId::generate());
    assert!(matches!(
        CeremonyState::from_pending(&pending),
        Err(PasskeyError::Corrupt(_))
    ));
}

#[test]
fn the_digest_of_an_answer_is_the_digest_of_its_ceremony() {
    let rp = relying_party();
    let mut authenticator = SoftAuthenticator::new();
    let user = UserId::generate();

    let (options, state) = rp.start_registration(user, "ada", "Ada", &[]).unwrap();
    let credential = authenticator.register(&options, &origin());
    assert_eq!(
        challenge_digest_of(&credential).as_deref(),
        Some(state.challenge_digest())
    );
    let new = rp.finish_registration(&state, &credential).unwrap();
    let passkey = stored_passkey(user, new);

    let (options, state) = rp.start_sign_in().unwrap();
    let credential = authenticator.sign_in(&options, &origin());
    assert_eq!(
        challenge_digest_of(&credential).as_deref(),
        Some(state.challenge_digest())
    );

    let (options, state) = rp.start_second_factor(user, &[passkey]).unwrap();
    let credential = authenticator.sign_in(&options, &origin());
    assert_eq!(
        challenge_digest_of(&credential).as_deref(),
        Some(state.challenge_digest())
    );
    assert_eq!(state.challenge_digest().len(), 64);
}

#[test]
fn the_relying_party_is_public_urls_domain_and_origin() {
    let rp =
        RelyingParty::from_public_url(&Url::parse("http://localhost:3000/auth/").unwrap()).unwrap();
    assert_eq!(rp.id(), "localhost");
    assert_eq!(rp.origin().as_str(), "http://localhost:3000/");

    let rp =
        RelyingParty::from_public_url(&Url::parse("https://Auth.Example.com/x").unwrap()).unwrap();
    assert_eq!(rp.id(), "auth.example.com");
    assert_eq!(rp.origin().as_str(), "https://auth.example.com/");
}

#[test]
fn an_ip_address_or_an_insecure_origin_offers_no_passkeys() {
    for url in [
        "http://127.0.0.1:8080",
        "https://192.0.2.1",
        "http://[::1]:8080",
        "https://[2001:db8::1]/",
        "http://example.com",
        "ftp://example.com",
        "unix:/run/auth.sock",
        "data:text/plain,hello",
    ] {
        let error = RelyingParty::from_public_url(&Url::parse(url).unwrap()).unwrap_err();
        assert!(!error.reason().is_empty(), "{url}");
    }
    let error =
        RelyingParty::from_public_url(&Url::parse("http://127.0.0.1:8080").unwrap()).unwrap_err();
    assert!(error.reason().contains("IP address"), "{error}");
}

/// A credential with one field replaced (`pointer` as in JSON Pointer).
fn with(credential: &Value, pointer: &str, value: Value) -> Value {
    let mut credential = credential.clone();
    *credential.pointer_mut(pointer).unwrap() = value;
    credential
}

#[test]
fn garbage_is_refused_without_a_panic() {
    let rp = relying_party();
    let mut authenticator = SoftAuthenticator::new();
    let user = UserId::generate();
    let (options, registration) = rp.start_registration(user, "ada", "Ada", &[]).unwrap();
    let attestation = authenticator.register(&options, &origin());
    let new = rp.finish_registration(&registration, &attestation).unwrap();
    let passkey = stored_passkey(user, new);
    let (options, sign_in) = rp.start_sign_in().unwrap();
    let assertion = authenticator.sign_in(&options, &origin());

    let garbage = [
        json!(null),
        json!(1),
        json!("credential"),
        json!([]),
        json!({}),
        json!({"id": "x", "rawId": "x", "type": "public-key"}),
        json!({"id": 1, "rawId": [1, 2], "response": "x", "type": "public-key"}),
        with(&assertion, "/rawId", json!("!!not base64!!")),
        with(&assertion, "/response/clientDataJSON", json!("%%%")),
        with(
            &assertion,
            "/response/clientDataJSON",
            json!(URL_SAFE_NO_PAD.encode("not json")),
        ),
        with(&assertion, "/response/authenticatorData", json!("AAAA")),
        with(&assertion, "/response/authenticatorData", json!("")),
        with(&assertion, "/response/signature", json!("")),
        with(
            &assertion,
            "/response/userHandle",
            json!(URL_SAFE_NO_PAD.encode([1u8; 3])),
        ),
        with(&assertion, "/response/userHandle", json!(5)),
        attestation.clone(),
    ];
    for credential in &garbage {
        let refused = rp.finish_sign_in(&sign_in, credential, &passkey);
        assert!(refused.is_err(), "{credential}");
        if credential != &attestation {
            let refused = rp.finish_registration(&registration, credential);
            assert!(refused.is_err(), "{credential}");
        }
        let _ = identify(credential);
        let _ = credential_id_of(credential);
        let _ = challenge_digest_of(credential);
    }
    assert!(matches!(
        rp.finish_sign_in(&sign_in, &attestation, &passkey),
        Err(PasskeyError::MalformedCredential)
    ));
    assert!(matches!(
        identify(&json!({})),
        Err(PasskeyError::MalformedCredential)
    ));
    assert_eq!(
        challenge_digest_of(&json!({"response": {"clientDataJSON": 3}})),
        None
    );

    // An assertion to a registration, and the other way round: the state decides.
    assert!(matches!(
        rp.finish_registration(&sign_in, &attestation),
        Err(PasskeyError::WrongCeremony)
    ));
    assert!(matches!(
        rp.finish_sign_in(&registration, &assertion, &passkey),
        Err(PasskeyError::WrongCeremony)
    ));
    assert!(matches!(
        rp.finish_second_factor(&sign_in, &assertion, &passkey),
        Err(PasskeyError::WrongCeremony)
    ));

    // A signature that does not verify.
    let signature = URL_SAFE_NO_PAD
        .decode(assertion["response"]["signature"].as_str().unwrap())
        .unwrap();
    let mut forged = signature;
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let forged = with(
        &assertion,
        "/response/signature",
        json!(URL_SAFE_NO_PAD.encode(forged)),
    );
    assert!(rp.finish_sign_in(&sign_in, &forged, &passkey).is_err());

    // A stored key that does not read back is ours to fix, not the client's.
    let corrupt = StoredPasskey {
        key: "{".into(),
        ..passkey.clone()
    };
    assert!(matches!(
        rp.finish_sign_in(&sign_in, &assertion, &corrupt),
        Err(PasskeyError::Corrupt(_))
    ));
    assert!(matches!(
        rp.start_registration(user, "ada", "Ada", &[CredentialId::from_stored("!".into())]),
        Err(PasskeyError::Corrupt(_))
    ));

    // After all that, the genuine assertion still passes.
    rp.finish_sign_in(&sign_in, &assertion, &passkey).unwrap();
}
