//! What a registry says when it refuses: the distribution spec's error
//! body (`{"errors":[{"code":"DENIED","message":"..."}]}`), turned into
//! one line a user can act on.

/// `HTTP 403 DENIED: requested access to the resource is denied`, or the
/// status with the first bytes of a body that is not the spec's.
pub fn describe(status: u16, body: &str) -> String {
    let mut text = format!("HTTP {status}");
    let parsed = serde_json::from_str::<serde_json::Value>(body).ok();
    let errors = parsed.as_ref().and_then(|v| v.get("errors")).and_then(|e| e.as_array());
    match errors {
        Some(list) if !list.is_empty() => {
            for (i, e) in list.iter().take(3).enumerate() {
                text.push_str(if i == 0 { " " } else { "; " });
                let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
                let message = e.get("message").and_then(|m| m.as_str()).unwrap_or("");
                text.push_str(&crate::diag::escape_controls(&format!(
                    "{code}{}{message}",
                    if code.is_empty() || message.is_empty() { "" } else { ": " }
                )));
            }
            if list.len() > 3 {
                text.push_str(&format!(" (and {} more errors)", list.len() - 3));
            }
        }
        _ => {
            let snippet: String = body.trim().chars().take(200).collect();
            if !snippet.is_empty() {
                text.push_str(": ");
                text.push_str(&crate::diag::escape_controls(&snippet));
            }
        }
    }
    text
}

/// The spec's error codes, when the body has them.
pub fn codes(body: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e.get("code").and_then(|c| c.as_str()).map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_errors() {
        let body = r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied","detail":null}]}"#;
        assert_eq!(describe(403, body), "HTTP 403 DENIED: requested access to the resource is denied");
        assert_eq!(codes(body), ["DENIED"]);
        assert_eq!(describe(502, "<html>bad gateway</html>"), "HTTP 502: <html>bad gateway</html>");
        assert_eq!(describe(404, ""), "HTTP 404");
    }
}
