//! The OpenAPI importer (`tollgate_publisher::definition`): any bytes sent as a
//! definition to `POST /apis/import-openapi`, `validate-openapi` or `PUT /swagger`, JSON
//! or YAML. Parsing never panics; an accepted definition yields its operations and
//! defaults, is stored as JSON that reads back as the same definition, and the documents
//! derived from it (the API's operations applied, a generated stub, a definition kept in
//! step with the API) are accepted too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use tollgate_model::Api;
use tollgate_publisher::definition;

static BLANK: LazyLock<Api> = LazyLock::new(|| {
    serde_json::from_value(serde_json::json!({"name": "", "version": "", "context": "/fuzz"}))
        .unwrap_or_else(|e| panic!("an API: {e}"))
});

fuzz_target!(|data: &[u8]| {
    let Ok(def) = definition::parse(data) else { return };
    let operations = def.operations();
    let _ = (def.title(), def.version(), def.description(), def.server_url());
    let stored = def.to_json();
    let again = definition::parse(stored.as_bytes()).unwrap_or_else(|e| panic!("the stored JSON is refused: {e:?}"));
    assert_eq!(again, def, "the stored JSON reads back as another definition");

    let mut api = BLANK.clone();
    definition::apply_to_api(&def, &mut api);
    assert_eq!(api.operations, operations);
    // A definition is generated for an API that has a name (an API without one is refused
    // before anything is generated for it): the title a definition offers may be empty once
    // the characters a name may not hold are taken out.
    if !api.name.trim().is_empty() {
        let generated = definition::generate(&api);
        if let Err(e) = definition::parse(generated.to_string().as_bytes()) {
            panic!("the generated definition is refused: {e:?}");
        }
    }
    let mut synced = def.doc.clone();
    definition::sync(&mut synced, &api);
    match definition::parse(synced.to_string().as_bytes()) {
        Ok(d) => {
            let mut ops: Vec<(String, String)> = d.operations().into_iter().map(|o| (o.target, o.verb)).collect();
            let mut want: Vec<(String, String)> = api
                .operations
                .iter()
                .map(|o| (o.target.clone(), o.verb.clone()))
                .collect();
            ops.sort();
            want.sort();
            assert_eq!(ops, want, "the definition kept in step has other operations");
        }
        Err(e) => panic!("the definition kept in step is refused: {e:?}"),
    }
});
