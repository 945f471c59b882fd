//! An application project: one `application.yaml` (or `.json`) under
//! `<owner>-<name>/`, whose `data` holds `applicationInfo` (the application as the
//! Developer Portal REST API shapes it) and `subscribedAPIs` (each API by provider, name
//! and version, with the business plan).

use crate::ProjectError;
use crate::api::{Format, folder_name, write_envelope};
use crate::archive::Files;
use crate::decode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An API an application subscribes to, as the reference names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiIdentifier {
    /// The API's provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
    /// The API's name.
    pub api_name: String,
    /// The API's version.
    pub version: String,
}

/// One subscription of the application.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribedApi {
    /// Which API.
    pub api_id: ApiIdentifier,
    /// The business plan.
    pub throttling_policy: String,
}

/// The project's `data`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    application_info: Value,
    #[serde(default, rename = "subscribedAPIs")]
    subscribed_apis: Vec<Value>,
    #[serde(default, skip_serializing)]
    #[allow(dead_code)]
    application_keys: Option<Value>,
}

/// An application project as read.
#[derive(Clone, Debug)]
pub struct ApplicationProject {
    /// The file it was read from (`application.yaml`).
    pub file: String,
    /// `applicationInfo`, for the reader to type.
    pub info: Value,
    /// The subscriptions.
    pub subscribed: Vec<SubscribedApi>,
    /// What the project holds that is not read.
    pub warnings: Vec<String>,
}

impl ApplicationProject {
    /// Reads the project from its files.
    pub fn from_files(files: &Files) -> Result<ApplicationProject, ProjectError> {
        let (file, bytes) = crate::api::find(files, "application")
            .ok_or_else(|| ProjectError::Missing("application.yaml (or application.json) at its top".into()))?;
        let data = decode::envelope(&file, bytes, &["application"])?;
        let (data, unknown): (Data, _) = decode::typed(&file, "data", &data)?;
        let mut warnings: Vec<String> = unknown
            .into_iter()
            .map(|f| format!("{file}: {f} is not supported by Tollgate and was not imported"))
            .collect();
        let mut subscribed = Vec::new();
        for (i, s) in data.subscribed_apis.iter().enumerate() {
            let (sub, unknown): (SubscribedApi, _) = decode::typed(&file, &format!("data.subscribedAPIs[{i}]"), s)?;
            warnings.extend(
                unknown
                    .into_iter()
                    .filter(|f| !f.ends_with(".subscriber") && !f.ends_with(".id"))
                    .map(|f| format!("{file}: {f} is not supported by Tollgate")),
            );
            subscribed.push(sub);
        }
        for path in files.files.keys() {
            if *path != file {
                warnings.push(format!(
                    "{path} is not imported: an application project holds only {file}"
                ));
            }
        }
        Ok(ApplicationProject {
            file,
            info: data.application_info,
            subscribed,
            warnings,
        })
    }

    /// The project's files, under `<owner>-<name>`.
    pub fn to_files(info: &Value, subscribed: &[SubscribedApi], format: Format) -> Result<Files, ProjectError> {
        let data = Data {
            application_info: info.clone(),
            subscribed_apis: subscribed
                .iter()
                .map(|s| serde_json::to_value(s).map_err(|e| ProjectError::Write(e.to_string())))
                .collect::<Result<_, _>>()?,
            application_keys: None,
        };
        let mut files = Files::default();
        files.put(
            format!("application.{}", format.extension()),
            write_envelope(format, "application", &data)?,
        );
        Ok(files)
    }
}

/// `<owner>-<name>`, the reference's top folder of an application project.
pub fn top_folder(owner: &str, name: &str) -> String {
    format!("{}-{}", folder_name(owner), folder_name(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_application_written_reads_back() {
        let info = json!({"name": "Shop", "throttlingPolicy": "Unlimited"});
        let subs = vec![SubscribedApi {
            api_id: ApiIdentifier {
                provider_name: Some("admin".into()),
                api_name: "OrderAPI".into(),
                version: "1.0.0".into(),
            },
            throttling_policy: "Gold".into(),
        }];
        let files = ApplicationProject::to_files(&info, &subs, Format::Yaml).unwrap();
        let back = ApplicationProject::from_files(&files).unwrap();
        assert_eq!((back.info, back.subscribed), (info, subs));
        assert!(back.warnings.is_empty());
    }

    #[test]
    fn the_reference_shape_reads_with_its_extra_fields_quiet() {
        let mut files = Files::default();
        files.put(
            "application.yaml",
            "type: application\nversion: v4.2.0\ndata:\n  applicationInfo: {name: Shop, throttlingPolicy: Unlimited}\n  subscribedAPIs:\n    - apiId: {providerName: admin, apiName: OrderAPI, version: 1.0.0, id: 0}\n      subscriber: {name: alice}\n      throttlingPolicy: Gold\n  applicationKeys: []\n",
        );
        let p = ApplicationProject::from_files(&files).unwrap();
        assert_eq!(p.subscribed[0].api_id.api_name, "OrderAPI");
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
        files.put(
            "application.yaml",
            "type: application\nversion: v4.2.0\ndata: {subscribedAPIs: []}\n",
        );
        let e = ApplicationProject::from_files(&files).unwrap_err().to_string();
        assert!(e.contains("applicationInfo"), "{e}");
    }
}
