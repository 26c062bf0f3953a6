//! A browser in miniature for the web UI's tests: keeps cookies, reads each page's CSRF token
//! and the hidden fields of its forms, never follows redirects.

use std::collections::HashMap;

use reqwest::header::{self, HeaderMap};

use crate::helpers::TestApp;

/// A browser in miniature: keeps cookies, reads each page's CSRF token, never follows redirects.
#[derive(Clone)]
pub struct Browser<'a> {
    app: &'a TestApp,
    pub cookies: HashMap<String, String>,
    pub csrf: String,
}

pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The value of the field `name` of the form that posts to `action`.
    #[track_caller]
    pub fn field(&self, action: &str, name: &str) -> String {
        let start = self
            .body
            .find(&format!("action=\"{action}\""))
            .unwrap_or_else(|| panic!("a form posting to {action}: {}", self.body));
        let form = &self.body[start..start + self.body[start..].find("</form>").expect("the form's end")];
        let at = form
            .find(&format!("name=\"{name}\""))
            .unwrap_or_else(|| panic!("a field {name} in the form of {action}: {form}"));
        let tag = &form[form[..at].rfind('<').expect("the field's tag")..];
        let tag = &tag[..tag.find('>').expect("the tag's end")];
        let value = tag.find("value=\"").map_or("", |at| {
            let value = &tag[at + 7..];
            &value[..value.find('"').expect("the value's end")]
        });
        value.to_owned()
    }

    /// The text of the element with this id (up to its first tag).
    #[track_caller]
    pub fn text_of(&self, id: &str) -> String {
        let marker = format!("id=\"{id}\">");
        let at = self.body.find(&marker).unwrap_or_else(|| panic!("an element {id}: {}", self.body)) + marker.len();
        self.body[at..at + self.body[at..].find('<').expect("the text's end")].to_owned()
    }

    /// The idempotency key the form that posts to `action` carries.
    #[track_caller]
    pub fn key(&self, action: &str) -> String {
        self.field(action, "idempotency_key")
    }

    /// The `Set-Cookie` line of `name`.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Browser<'a> {
        Browser {
            app,
            cookies: HashMap::new(),
            csrf: String::new(),
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub async fn keep(&mut self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for line in headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let pair = line.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let body = response.text().await.expect("a body");
        if let Some(start) = body.find("name=\"csrf\" value=\"") {
            let rest = &body[start + 19..];
            self.csrf = rest[..rest.find('"').expect("the token's end")].to_owned();
        }
        Page { status, headers, body }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let response = self
            .app
            .http
            .get(format!("{}{path}", self.app.base))
            .header(header::COOKIE, self.cookie_header())
            .send()
            .await
            .expect("the page answers");
        self.keep(response).await
    }

    /// Posts a form as a page of this site would (its `Origin`), with the page's token unless
    /// the fields name one.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post_from(path, fields, &self.app.base.clone()).await
    }

    pub async fn post_from(&mut self, path: &str, fields: &[(&str, &str)], origin: &str) -> Page {
        let mut form: Vec<(String, String)> = fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        if !fields.iter().any(|(k, _)| *k == "csrf") {
            form.push(("csrf".to_owned(), self.csrf.clone()));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let response = self
            .app
            .http
            .post(format!("{}{path}", self.app.base))
            .header(header::COOKIE, self.cookie_header())
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("the page answers");
        self.keep(response).await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        self.get("/sign-in").await;
        self.post("/sign-in", &[("email", email), ("password", password), ("next", "/wallet")])
            .await
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
