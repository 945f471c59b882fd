//! The project reader (`tollgate_project`): any bytes sent as the zip of `POST
//! /apis/import` or `/applications/import`, as an `api_params.yaml`, or as a throttling
//! policy file. Reading never panics and stays within its caps; an API project that reads
//! is written back (YAML and JSON) and reads again as the same project.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_project::api::{ApiProject, Format};
use tollgate_project::application::ApplicationProject;
use tollgate_project::params::{ApiParams, substitute};
use tollgate_project::{Limits, archive, policy};

/// Small caps, so that the fuzzer reaches them.
const LIMITS: Limits = Limits {
    max_entries: 64,
    max_entry_bytes: 1 << 20,
    max_total_bytes: 4 << 20,
};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    match mode % 4 {
        0 => {
            let Ok(files) = archive::read_zip(data, LIMITS) else { return };
            assert!(files.files.len() <= LIMITS.max_entries);
            assert!(files.files.keys().all(|p| !p.split('/').any(|part| part == ".." || part.is_empty())));
            let _ = ApplicationProject::from_files(&files);
            let Ok(project) = ApiProject::from_files(&files) else { return };
            for format in [Format::Yaml, Format::Json] {
                let written = project.to_files(format).unwrap_or_else(|e| panic!("cannot write a project read: {e}"));
                let zip = archive::write_zip(&project.top_folder(), &written)
                    .unwrap_or_else(|e| panic!("cannot zip a project read: {e}"));
                let back = archive::read_zip(&zip, Limits::default())
                    .and_then(|f| ApiProject::from_files(&f))
                    .unwrap_or_else(|e| panic!("a project written is refused: {e}"));
                assert_eq!(back.api, project.api, "the API reads back otherwise");
                assert_eq!(back.definition, project.definition, "the definition reads back otherwise");
                assert_eq!(back.deployments.unwrap_or_default(), project.deployments.clone().unwrap_or_default());
            }
        }
        1 => {
            let text = String::from_utf8_lossy(data);
            let Ok(text) = substitute(&text, |name| Some(format!("<{name}>"))) else { return };
            let Ok(params) = ApiParams::parse(text.as_bytes()) else { return };
            let files = {
                let mut f = tollgate_project::Files::default();
                f.put("api.yaml", "type: api\nversion: v4.2.0\ndata: {name: P, version: '1', context: /p}\n");
                f
            };
            let mut project = ApiProject::from_files(&files).unwrap_or_else(|e| panic!("the base project: {e}"));
            let first = params.environments.first().map(|e| e.name.clone());
            let _ = params.apply(first.as_deref(), &mut project);
        }
        2 => {
            let _ = policy::read("policy", data);
        }
        _ => {
            let text = String::from_utf8_lossy(data);
            let _ = substitute(&text, |name| (name.len() % 2 == 0).then(|| name.to_string()));
        }
    }
});
