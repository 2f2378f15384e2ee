//! The format steps (`csv-to-json`, `json-to-csv`, `xml-to-json`,
//! `json-to-xml`) through whole pipelines, and the examples of their doc
//! pages.

#![cfg(feature = "formats")]

use std::path::Path;

use serde_json::{Value, json};
use sluice_engine::testing::run_cases;
use sluice_engine::{FlowError, LoadError, Plan, RunOptions, load_str};
use sluice_spec::Format;

fn plan(yaml: &str) -> Plan {
    match load_str(
        "t.yaml",
        yaml,
        Format::Yaml,
        None,
        &sluice_connectors::catalog(),
    ) {
        Ok(plan) => plan,
        Err(e) => panic!("pipeline should compile:\n{e}"),
    }
}

fn problems(yaml: &str) -> String {
    match load_str(
        "t.yaml",
        yaml,
        Format::Yaml,
        None,
        &sluice_connectors::catalog(),
    ) {
        Ok(_) => panic!("pipeline should not compile"),
        Err(LoadError::Invalid(problems)) => problems.to_string(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

async fn result(yaml: &str, input: Value) -> Result<Value, FlowError> {
    plan(yaml)
        .execute(input, RunOptions::default())
        .await
        .into_result()
}

async fn output(yaml: &str, input: Value) -> Value {
    match result(yaml, input).await {
        Ok(v) => v,
        Err(e) => panic!("execution failed: {}", e.to_value()),
    }
}

async fn error(yaml: &str, input: Value) -> FlowError {
    match result(yaml, input).await {
        Ok(v) => panic!("execution should fail, got {v}"),
        Err(e) => e,
    }
}

/// A one-step pipeline of `step` (YAML of the step's fields, one per line).
fn pipeline(step: &str) -> String {
    let fields: String = step
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("    {}\n", l.trim()))
        .collect();
    format!("name: t\nsteps:\n  - id: s\n{fields}")
}

fn assert_bad_input(error: &FlowError, code: &str, wanted: &[&str]) {
    assert_eq!(error.status, 400, "{}", error.message);
    assert_eq!(error.code, code, "{}", error.message);
    assert_eq!(error.step.as_deref(), Some("s"));
    for w in wanted {
        assert!(
            error.message.contains(w),
            "{:?} should contain {w:?}",
            error.message
        );
    }
}

// ---------------------------------------------------------------- csv-to-json

#[tokio::test]
async fn csv_header_rows_become_objects_in_column_order() {
    let yaml = pipeline("type: csv-to-json");
    let out = output(&yaml, json!("name,age,city\nAda,36,London\nBo,7,Oslo\n")).await;
    assert_eq!(
        out,
        json!([
            {"name": "Ada", "age": "36", "city": "London"},
            {"name": "Bo", "age": "7", "city": "Oslo"}
        ])
    );
    // Keys keep the column order.
    assert_eq!(
        serde_json::to_string(&out[0]).expect("json"),
        r#"{"name":"Ada","age":"36","city":"London"}"#
    );
    // Only a header, or nothing: no rows.
    assert_eq!(output(&yaml, json!("a,b\n")).await, json!([]));
    assert_eq!(output(&yaml, json!("")).await, json!([]));
}

#[tokio::test]
async fn csv_without_header_gives_arrays() {
    let yaml = pipeline("type: csv-to-json\nheader: false");
    let out = output(&yaml, json!("a,b\n1,2")).await;
    assert_eq!(out, json!([["a", "b"], ["1", "2"]]));
}

#[tokio::test]
async fn csv_quoting_and_escaping() {
    let yaml = pipeline("type: csv-to-json");
    let text = "id,note\n1,\"a, b\"\n2,\"she said \"\"hi\"\"\"\n3,\"two\nlines\"\n4,\"\"\n";
    let out = output(&yaml, json!(text)).await;
    assert_eq!(
        out,
        json!([
            {"id": "1", "note": "a, b"},
            {"id": "2", "note": "she said \"hi\""},
            {"id": "3", "note": "two\nlines"},
            {"id": "4", "note": ""}
        ])
    );
    // A quote inside an unquoted field is an ordinary character.
    let out = output(&yaml, json!("a,b\n5\" tall,x\n")).await;
    assert_eq!(out, json!([{"a": "5\" tall", "b": "x"}]));
    // So is a quote after leading spaces; `trim` removes only the spaces.
    let yaml = pipeline("type: csv-to-json\nheader: false\ntrim: true");
    let out = output(&yaml, json!("a, \"b\"\n")).await;
    assert_eq!(out, json!([["a", "\"b\""]]));
}

#[tokio::test]
async fn csv_delimiter_and_quote_options() {
    let yaml = pipeline("type: csv-to-json\ndelimiter: \";\"");
    let out = output(&yaml, json!("a;b\n\"x;y\";2\n")).await;
    assert_eq!(out, json!([{"a": "x;y", "b": "2"}]));

    let yaml = pipeline("type: csv-to-json\ndelimiter: \"\\t\"");
    let out = output(&yaml, json!("a\tb\nx,y\t2\n")).await;
    assert_eq!(out, json!([{"a": "x,y", "b": "2"}]));

    let yaml = pipeline("type: csv-to-json\nquote: \"'\"");
    let out = output(&yaml, json!("a,b\n'x, ''y''',\"z\"\n")).await;
    assert_eq!(out, json!([{"a": "x, 'y'", "b": "\"z\""}]));
}

#[tokio::test]
async fn csv_trim() {
    let text = "a , b\n  1 ,  x y  \n";
    let out = output(&pipeline("type: csv-to-json"), json!(text)).await;
    assert_eq!(out, json!([{"a ": "  1 ", " b": "  x y  "}]));
    let out = output(&pipeline("type: csv-to-json\ntrim: true"), json!(text)).await;
    assert_eq!(out, json!([{"a": "1", "b": "x y"}]));
}

#[tokio::test]
async fn csv_types() {
    let text = "i,f,b,e,s,z\n42,-1.5,true,,abc,007\n-3,2e3,false,,TRUE,1.\n";
    let out = output(&pipeline("type: csv-to-json\ntypes: true"), json!(text)).await;
    assert_eq!(
        out,
        json!([
            {"i": 42, "f": -1.5, "b": true, "e": null, "s": "abc", "z": "007"},
            {"i": -3, "f": 2000.0, "b": false, "e": null, "s": "TRUE", "z": "1."}
        ])
    );
    let out = output(&pipeline("type: csv-to-json"), json!(text)).await;
    assert_eq!(out[0]["i"], json!("42"));
    assert_eq!(out[0]["e"], json!(""));
    let out = output(
        &pipeline("type: csv-to-json\ntypes: true\nheader: false"),
        json!("1,x,false\n"),
    )
    .await;
    assert_eq!(out, json!([[1, "x", false]]));
}

#[tokio::test]
async fn csv_empty_lines() {
    let text = "a,b\n1,2\n\n   \n3,4\n\n";
    let out = output(&pipeline("type: csv-to-json"), json!(text)).await;
    assert_eq!(out, json!([{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]));

    let yaml = pipeline("type: csv-to-json\nskipEmptyLines: false");
    let out = output(&yaml, json!(text)).await;
    assert_eq!(
        out,
        json!([
            {"a": "1", "b": "2"},
            {"a": "", "b": ""},
            {"a": "", "b": ""},
            {"a": "3", "b": "4"},
            {"a": "", "b": ""}
        ])
    );
    let yaml = pipeline("type: csv-to-json\nskipEmptyLines: false\ntypes: true\nheader: false");
    let out = output(&yaml, json!("1,2\r\n\r\n3,4\r\n")).await;
    assert_eq!(out, json!([[1, 2], [], [3, 4]]));
    let yaml = pipeline("type: csv-to-json\nskipEmptyLines: false\ntypes: true");
    let out = output(&yaml, json!("a,b\n\n1,2")).await;
    assert_eq!(out, json!([{"a": null, "b": null}, {"a": 1, "b": 2}]));
}

#[tokio::test]
async fn csv_ragged_rows_are_errors_naming_the_line_unless_flexible() {
    let text = "a,b,c\n1,2,3\n\"multi\nline\",5,6\n\n7,8\n9,10,11,12\n";
    let e = error(&pipeline("type: csv-to-json"), json!(text)).await;
    assert_bad_input(
        &e,
        "csv-to-json",
        &["line 6", "2 fields", "header", "3", "flexible"],
    );

    let out = output(&pipeline("type: csv-to-json\nflexible: true"), json!(text)).await;
    assert_eq!(
        out,
        json!([
            {"a": "1", "b": "2", "c": "3"},
            {"a": "multi\nline", "b": "5", "c": "6"},
            {"a": "7", "b": "8", "c": null},
            {"a": "9", "b": "10", "c": "11"}
        ])
    );

    let yaml = pipeline("type: csv-to-json\nheader: false");
    let e = error(&yaml, json!("1,2\n3\n")).await;
    assert_bad_input(
        &e,
        "csv-to-json",
        &["line 2", "1 fields", "first row (line 1)"],
    );
    let yaml = pipeline("type: csv-to-json\nheader: false\nflexible: true");
    assert_eq!(
        output(&yaml, json!("1,2\n3\n")).await,
        json!([["1", "2"], ["3"]])
    );
}

#[tokio::test]
async fn csv_line_numbers_count_crlf_and_bom() {
    let text = "\u{feff}a,b\r\n1,2\r\n\r\n3\r\n";
    let out = output(&pipeline("type: csv-to-json\nflexible: true"), json!(text)).await;
    assert_eq!(out, json!([{"a": "1", "b": "2"}, {"a": "3", "b": null}]));
    let e = error(&pipeline("type: csv-to-json"), json!(text)).await;
    assert_bad_input(&e, "csv-to-json", &["line 4"]);
}

#[tokio::test]
async fn csv_unicode() {
    let text = "名前,ville,emoji\n太郎,Zürich,🦀\n\"Ünïcödé, ça va\",Æsir,👩‍💻\n";
    let out = output(&pipeline("type: csv-to-json"), json!(text)).await;
    assert_eq!(
        out,
        json!([
            {"名前": "太郎", "ville": "Zürich", "emoji": "🦀"},
            {"名前": "Ünïcödé, ça va", "ville": "Æsir", "emoji": "👩‍💻"}
        ])
    );
}

#[tokio::test]
async fn csv_to_json_value_and_type_errors() {
    let yaml = pipeline("type: csv-to-json\nvalue: \"{{ message.body }}\"\ninto: rows");
    let out = output(&yaml, json!({"body": "x\n1\n"})).await;
    assert_eq!(out, json!({"body": "x\n1\n", "rows": [{"x": "1"}]}));

    let e = error(&pipeline("type: csv-to-json"), json!({"a": 1})).await;
    assert_bad_input(&e, "csv-to-json", &["a string", "got an object"]);
    let e = error(&pipeline("type: csv-to-json"), json!(12)).await;
    assert_bad_input(&e, "csv-to-json", &["got a number"]);

    let e = error(&pipeline("type: csv-to-json"), json!("a,b,a\n1,2,3\n")).await;
    assert_bad_input(
        &e,
        "csv-to-json",
        &["line 1", "\"a\" twice", "columns 1 and 3"],
    );
}

// ---------------------------------------------------------------- json-to-csv

#[tokio::test]
async fn json_to_csv_objects() {
    let rows = json!([
        {"id": 1, "name": "Ada", "ok": true},
        {"id": 2, "tags": ["x", "y"], "name": null, "meta": {"a": 1}},
        {"id": 3.5, "name": "Bo"}
    ]);
    let out = output(&pipeline("type: json-to-csv"), rows.clone()).await;
    assert_eq!(
        out,
        json!(
            "id,name,ok,tags,meta\n1,Ada,true,,\n2,,,\"[\"\"x\"\",\"\"y\"\"]\",\"{\"\"a\"\":1}\"\n3.5,Bo,,,\n"
        )
    );

    let yaml = pipeline("type: json-to-csv\ncolumns: [name, id, missing]");
    let out = output(&yaml, rows.clone()).await;
    assert_eq!(out, json!("name,id,missing\nAda,1,\n,2,\nBo,3.5,\n"));

    let yaml = pipeline("type: json-to-csv\ncolumns: [name]\nheader: false");
    assert_eq!(output(&yaml, rows).await, json!("Ada\n\"\"\nBo\n"));

    assert_eq!(
        output(&pipeline("type: json-to-csv"), json!([])).await,
        json!("")
    );
    // Given columns make the header line even without rows.
    let yaml = pipeline("type: json-to-csv\ncolumns: [a, b]");
    assert_eq!(output(&yaml, json!([])).await, json!("a,b\n"));
    assert_eq!(output(&yaml, json!([{}])).await, json!("a,b\n,\n"));
}

#[tokio::test]
async fn json_to_csv_arrays() {
    let rows = json!([["a", 1, null], ["b,c", false, [1]]]);
    let out = output(&pipeline("type: json-to-csv"), rows.clone()).await;
    assert_eq!(out, json!("a,1,\n\"b,c\",false,[1]\n"));
    let yaml = pipeline("type: json-to-csv\ncolumns: [letter, n, x]");
    let out = output(&yaml, rows).await;
    assert_eq!(out, json!("letter,n,x\na,1,\n\"b,c\",false,[1]\n"));
}

#[tokio::test]
async fn json_to_csv_quoting_options_and_line_endings() {
    let rows = json!([{"a": "x;y", "b": "say \"hi\"", "c": "two\nlines", "d": "plain"}]);
    let out = output(&pipeline("type: json-to-csv"), rows.clone()).await;
    assert_eq!(
        out,
        json!("a,b,c,d\nx;y,\"say \"\"hi\"\"\",\"two\nlines\",plain\n")
    );
    let yaml = pipeline("type: json-to-csv\ndelimiter: \";\"\nlineEnding: crlf");
    let out = output(&yaml, rows.clone()).await;
    assert_eq!(
        out,
        json!("a;b;c;d\r\n\"x;y\";\"say \"\"hi\"\"\";\"two\nlines\";plain\r\n")
    );
    let yaml = pipeline("type: json-to-csv\nquoteAll: true\nlineEnding: lf");
    let out = output(&yaml, json!([{"a": 1, "b": "x"}])).await;
    assert_eq!(out, json!("\"a\",\"b\"\n\"1\",\"x\"\n"));
    let yaml = pipeline("type: json-to-csv\ndelimiter: \"\\t\"");
    let out = output(&yaml, json!([{"a": "x\ty", "b": "ü"}])).await;
    assert_eq!(out, json!("a\tb\n\"x\ty\"\tü\n"));
}

#[tokio::test]
async fn json_to_csv_value_and_errors() {
    let yaml = pipeline("type: json-to-csv\nvalue: \"{{ message.items }}\"\ninto: csv");
    let out = output(&yaml, json!({"items": [{"a": "日本"}]})).await;
    assert_eq!(out["csv"], json!("a\n日本\n"));

    let e = error(&pipeline("type: json-to-csv"), json!({"a": 1})).await;
    assert_bad_input(&e, "json-to-csv", &["an array of rows", "got an object"]);
    let e = error(&pipeline("type: json-to-csv"), json!("text")).await;
    assert_bad_input(&e, "json-to-csv", &["got a string"]);
    let e = error(&pipeline("type: json-to-csv"), json!([{"a": 1}, 5])).await;
    assert_bad_input(&e, "json-to-csv", &["row [1] is a number", "objects"]);
    let e = error(&pipeline("type: json-to-csv"), json!([[1], {"a": 1}])).await;
    assert_bad_input(&e, "json-to-csv", &["row [1] is an object", "arrays"]);
    let e = error(&pipeline("type: json-to-csv"), json!(["x"])).await;
    assert_bad_input(&e, "json-to-csv", &["row [0] is a string"]);
}

#[tokio::test]
async fn csv_round_trip() {
    let text = "id,name,note\n1,Zoë,\"a, \"\"quoted\"\" b\"\n2,太郎,\"two\nlines\"\n3,,plain\n";
    let yaml = "name: t\nsteps:\n  - type: csv-to-json\n  - type: json-to-csv\n";
    assert_eq!(output(yaml, json!(text)).await, json!(text));
    let yaml = "name: t\nsteps:\n  - type: json-to-csv\n  - type: csv-to-json\n    types: true\n";
    let rows = json!([{"a": 1, "b": "x,y", "c": true}, {"a": 2.5, "b": "\"q\"", "c": null}]);
    assert_eq!(output(yaml, rows.clone()).await, rows);
}

// ---------------------------------------------------------------- xml-to-json

#[tokio::test]
async fn xml_mapping() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE order>
<!-- a comment -->
<order id="7" status="new">
  <customer>Ada</customer>
  <item sku="A1">Pen</item>
  <item sku="B2"><qty>2</qty></item>
  <?app ignore me?>
  <gift/>
  <wrap kind="box"/>
  <empty></empty>
  <blank>   </blank>
  <note>  spaced  </note>
</order>"#;
    let out = output(&pipeline("type: xml-to-json"), json!(xml)).await;
    assert_eq!(
        out,
        json!({"order": {
            "@id": "7",
            "@status": "new",
            "customer": "Ada",
            "item": [{"@sku": "A1", "#text": "Pen"}, {"@sku": "B2", "qty": "2"}],
            "gift": null,
            "wrap": {"@kind": "box"},
            "empty": null,
            "blank": null,
            "note": "  spaced  "
        }})
    );
    assert_eq!(
        serde_json::to_string(&out["order"]).expect("json")[..30].to_owned(),
        r#"{"@id":"7","@status":"new","cu"#
    );
}

#[tokio::test]
async fn xml_repeated_names_and_forced_arrays() {
    let xml = "<list><a>1</a><b>x</b><a>2</a><c>only</c><a>3</a></list>";
    let out = output(&pipeline("type: xml-to-json"), json!(xml)).await;
    assert_eq!(
        out,
        json!({"list": {"a": ["1", "2", "3"], "b": "x", "c": "only"}})
    );
    let yaml = pipeline("type: xml-to-json\narrays: [c, b, list]");
    let out = output(&yaml, json!(xml)).await;
    assert_eq!(
        out,
        json!({"list": {"a": ["1", "2", "3"], "b": ["x"], "c": ["only"]}})
    );
}

#[tokio::test]
async fn xml_text_cdata_entities_and_mixed_content() {
    let xml = "<r><a>x &amp; y &lt;z&gt; &quot;q&quot; &apos;s&apos; &#233;&#x1F980;</a>\
               <b><![CDATA[<not> & markup]]></b>\
               <c>one<!-- gone -->two</c>\
               <d>line1\r\nline2</d>\
               <p lang=\"en\">Hello <i>big</i> world</p></r>";
    let out = output(&pipeline("type: xml-to-json"), json!(xml)).await;
    assert_eq!(
        out,
        json!({"r": {
            "a": "x & y <z> \"q\" 's' é🦀",
            "b": "<not> & markup",
            "c": "onetwo",
            "d": "line1\nline2",
            "p": {"@lang": "en", "i": "big", "#text": "Hello  world"}
        }})
    );
    let out = output(
        &pipeline("type: xml-to-json"),
        json!(r#"<a t="&lt;&amp;&#65;&quot;">v</a>"#),
    )
    .await;
    assert_eq!(out, json!({"a": {"@t": "<&A\"", "#text": "v"}}));
}

#[tokio::test]
async fn xml_namespaces_kept_or_stripped() {
    let xml = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:x">
  <soap:Body><m:Price xmlns:m="urn:m" m:currency="EUR">9.5</m:Price></soap:Body>
</soap:Envelope>"#;
    let out = output(&pipeline("type: xml-to-json"), json!(xml)).await;
    assert_eq!(
        out,
        json!({"soap:Envelope": {
            "@xmlns:soap": "http://schemas.xmlsoap.org/soap/envelope/",
            "@xmlns": "urn:x",
            "soap:Body": {"m:Price": {"@xmlns:m": "urn:m", "@m:currency": "EUR", "#text": "9.5"}}
        }})
    );
    let yaml = pipeline("type: xml-to-json\nstripNamespaces: true\ntypes: true");
    let out = output(&yaml, json!(xml)).await;
    assert_eq!(
        out,
        json!({"Envelope": {"Body": {"Price": {"@currency": "EUR", "#text": 9.5}}}})
    );
}

#[tokio::test]
async fn xml_types_and_custom_keys() {
    let xml = r#"<r n="3" flag="true"><i>42</i><f>-0.25</f><b>false</b><s>0042</s><e/><t x="1">7</t></r>"#;
    let yaml = pipeline("type: xml-to-json\ntypes: true");
    let out = output(&yaml, json!(xml)).await;
    assert_eq!(
        out,
        json!({"r": {"@n": 3, "@flag": true, "i": 42, "f": -0.25, "b": false, "s": "0042", "e": null, "t": {"@x": 1, "#text": 7}}})
    );
    let yaml = pipeline("type: xml-to-json\nattributePrefix: \"_\"\ntextKey: value");
    let out = output(&yaml, json!(xml)).await;
    assert_eq!(out["r"]["_n"], json!("3"));
    assert_eq!(out["r"]["t"], json!({"_x": "1", "value": "7"}));
    // An empty prefix: attributes by their plain name.
    let yaml = pipeline("type: xml-to-json\nattributePrefix: \"\"");
    let out = output(&yaml, json!(r#"<r id="1"><x>2</x></r>"#)).await;
    assert_eq!(out, json!({"r": {"id": "1", "x": "2"}}));
}

#[tokio::test]
async fn xml_unicode() {
    let xml = "<données ville=\"Zürich\"><名前>太郎</名前><e>🦀 ça</e></données>";
    let out = output(&pipeline("type: xml-to-json"), json!(xml)).await;
    assert_eq!(
        out,
        json!({"données": {"@ville": "Zürich", "名前": "太郎", "e": "🦀 ça"}})
    );
}

#[tokio::test]
async fn xml_errors_name_the_place() {
    let yaml = pipeline("type: xml-to-json");
    let e = error(&yaml, json!("<a>\n  <b>x</c>\n</a>")).await;
    assert_bad_input(&e, "xml-to-json", &["malformed XML", "line 2", "column"]);

    let e = error(&yaml, json!("<a>\n  <b>x</b>\n")).await;
    assert_bad_input(
        &e,
        "xml-to-json",
        &["<a>", "line 1, column 1", "never closed"],
    );

    let e = error(&yaml, json!("<a>\n<b>&nbsp;</b></a>")).await;
    assert_bad_input(&e, "xml-to-json", &["line 2, column 4", "nbsp"]);

    let e = error(&yaml, json!("<a/>\n<b/>")).await;
    assert_bad_input(&e, "xml-to-json", &["line 2, column 1", "second root"]);

    let e = error(&yaml, json!("<a/>oops")).await;
    assert_bad_input(&e, "xml-to-json", &["line 1, column 5", "outside the root"]);

    let e = error(&yaml, json!("<a x='1' x='2'/>")).await;
    assert_bad_input(
        &e,
        "xml-to-json",
        &["line 1, column 10", "twice", "column 4"],
    );

    let e = error(&yaml, json!("<a>\n <b c></b></a>")).await;
    assert_bad_input(&e, "xml-to-json", &["line 2, column 6", "`=`"]);

    let e = error(&yaml, json!("  <!-- nothing -->  ")).await;
    assert_bad_input(&e, "xml-to-json", &["no root element"]);

    let e = error(&yaml, json!("<a>\n<b attr=\"1></b></a>")).await;
    assert_bad_input(&e, "xml-to-json", &["malformed XML", "line 2"]);

    let e = error(&yaml, json!(["<a/>"])).await;
    assert_bad_input(&e, "xml-to-json", &["a string", "got an array"]);
}

#[tokio::test]
async fn xml_to_json_value_expression() {
    let yaml = pipeline("type: xml-to-json\nvalue: \"{{ message.xml }}\"\ninto: doc");
    let out = output(&yaml, json!({"xml": "<a>1</a>"})).await;
    assert_eq!(out["doc"], json!({"a": "1"}));
}

// ---------------------------------------------------------------- json-to-xml

#[tokio::test]
async fn json_to_xml_mapping() {
    let value = json!({"order": {
        "@id": 7,
        "@status": "new",
        "customer": "Ada",
        "item": [{"@sku": "A1", "#text": "Pen"}, {"@sku": "B2", "qty": 2}],
        "gift": null,
        "paid": true,
        "none": [],
        "wrap": {"@kind": "box"},
        "blank": ""
    }});
    let out = output(&pipeline("type: json-to-xml"), value.clone()).await;
    assert_eq!(
        out,
        json!(concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?>"#,
            r#"<order id="7" status="new"><customer>Ada</customer>"#,
            r#"<item sku="A1">Pen</item><item sku="B2"><qty>2</qty></item>"#,
            r#"<gift/><paid>true</paid><wrap kind="box"/><blank></blank></order>"#
        ))
    );

    let yaml = pipeline("type: json-to-xml\nindent: 2\ndeclaration: false");
    let out = output(&yaml, value).await;
    assert_eq!(
        out,
        json!(
            "<order id=\"7\" status=\"new\">\n  <customer>Ada</customer>\n  <item sku=\"A1\">Pen</item>\n  <item sku=\"B2\">\n    <qty>2</qty>\n  </item>\n  <gift/>\n  <paid>true</paid>\n  <wrap kind=\"box\"/>\n  <blank></blank>\n</order>"
        )
    );
    let yaml = pipeline("type: json-to-xml\nindent: 4");
    let out = output(&yaml, json!({"a": {"b": {"c": 1}}})).await;
    assert_eq!(
        out,
        json!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>\n    <b>\n        <c>1</c>\n    </b>\n</a>"
        )
    );
}

#[tokio::test]
async fn json_to_xml_root_option() {
    let yaml = pipeline("type: json-to-xml\nroot: rows\ndeclaration: false");
    let out = output(&yaml, json!({"row": [1, 2], "count": 2})).await;
    assert_eq!(
        out,
        json!("<rows><row>1</row><row>2</row><count>2</count></rows>")
    );
    // `root` wraps even a one-key object.
    let out = output(&yaml, json!({"row": 1})).await;
    assert_eq!(out, json!("<rows><row>1</row></rows>"));
    let out = output(&yaml, json!("text")).await;
    assert_eq!(out, json!("<rows>text</rows>"));
    let out = output(&yaml, json!(null)).await;
    assert_eq!(out, json!("<rows/>"));
    let from_value = pipeline("type: json-to-xml\nvalue: \"{{ message.doc }}\"\ninto: xml");
    let out = output(&from_value, json!({"doc": {"a": {"@b": "c"}}})).await;
    assert_eq!(
        out["xml"],
        json!(r#"<?xml version="1.0" encoding="UTF-8"?><a b="c"/>"#)
    );

    let e = error(&pipeline("type: json-to-xml"), json!({"a": 1, "b": 2})).await;
    assert_bad_input(&e, "json-to-xml", &["exactly one key", "2 keys", "root"]);
    let e = error(&pipeline("type: json-to-xml"), json!([1])).await;
    assert_bad_input(&e, "json-to-xml", &["got an array", "root"]);
    let e = error(&pipeline("type: json-to-xml"), json!({"a": [1, 2]})).await;
    assert_bad_input(&e, "json-to-xml", &["<a>", "array"]);
    let e = error(&yaml, json!([1, 2])).await;
    assert_bad_input(&e, "json-to-xml", &["<rows>", "array"]);
}

#[tokio::test]
async fn json_to_xml_escaping_and_unicode() {
    let value = json!({"r": {
        "@q": "a \"b\" & 'c' <d>\n\te",
        "t": "x < y & z > w ]]> \"ok\"",
        "cr": "a\r\nb",
        "名前": "太郎 🦀"
    }});
    let yaml = pipeline("type: json-to-xml\ndeclaration: false");
    let out = output(&yaml, value.clone()).await;
    assert_eq!(
        out,
        json!(concat!(
            r#"<r q="a &quot;b&quot; &amp; &apos;c&apos; &lt;d&gt;&#10;&#9;e">"#,
            r#"<t>x &lt; y &amp; z &gt; w ]]&gt; "ok"</t><cr>a&#13;
b</cr><名前>太郎 🦀</名前></r>"#
        ))
    );
    // Reading it back gives the same values.
    let yaml = "name: t\nsteps:\n  - type: json-to-xml\n  - type: xml-to-json\n";
    assert_eq!(
        output(yaml, value).await,
        json!({"r": {
            "@q": "a \"b\" & 'c' <d>\n\te",
            "t": "x < y & z > w ]]> \"ok\"",
            "cr": "a\r\nb",
            "名前": "太郎 🦀"
        }})
    );
}

#[tokio::test]
async fn json_to_xml_custom_keys() {
    let yaml =
        pipeline("type: json-to-xml\nattributePrefix: \"_\"\ntextKey: value\ndeclaration: false");
    let out = output(&yaml, json!({"a": {"_id": 1, "value": "v"}})).await;
    assert_eq!(out, json!(r#"<a id="1">v</a>"#));
    // `@b` is no attribute with this prefix, and not a valid element name.
    let e = error(&yaml, json!({"a": {"_id": 1, "@b": "c"}})).await;
    assert_bad_input(&e, "json-to-xml", &["\"@b\"", "a.@b", "element name"]);
    // An empty prefix writes no attributes.
    let yaml = pipeline("type: json-to-xml\nattributePrefix: \"\"\ndeclaration: false");
    let out = output(&yaml, json!({"a": {"id": 1}})).await;
    assert_eq!(out, json!("<a><id>1</id></a>"));
}

#[tokio::test]
async fn json_to_xml_errors() {
    let yaml = pipeline("type: json-to-xml");
    let e = error(&yaml, json!({"order": {"first name": "Ada"}})).await;
    assert_bad_input(
        &e,
        "json-to-xml",
        &["\"first name\"", "order.first name", "element name"],
    );
    let e = error(&yaml, json!({"order": {"items": [{"1st": 1}]}})).await;
    assert_bad_input(&e, "json-to-xml", &["\"1st\"", "order.items[0].1st"]);
    let e = error(&yaml, json!({"order": {"@bad attr": 1}})).await;
    assert_bad_input(&e, "json-to-xml", &["\"@bad attr\"", "attribute name"]);
    let e = error(&yaml, json!({"order": {"@id": {"x": 1}}})).await;
    assert_bad_input(&e, "json-to-xml", &["order.@id", "got an object"]);
    let e = error(&yaml, json!({"order": {"#text": [1]}})).await;
    assert_bad_input(&e, "json-to-xml", &["order.#text", "got an array"]);
    let e = error(&yaml, json!({"order": {"rows": [[1, 2]]}})).await;
    assert_bad_input(
        &e,
        "json-to-xml",
        &["order.rows[0]", "array inside an array"],
    );
    let e = error(&yaml, json!({"order": {"bell": "ding\u{7}"}})).await;
    assert_bad_input(&e, "json-to-xml", &["order.bell", "U+0007"]);
    let e = error(&yaml, json!({"a:b:c": 1})).await;
    assert_bad_input(&e, "json-to-xml", &["\"a:b:c\""]);
}

#[tokio::test]
async fn xml_round_trip() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">
  <soap:Body>
    <order id="7" note="a &amp; b">
      <customer>Ada &lt;ada@example.com&gt;</customer>
      <item sku="A1">Pen</item>
      <item sku="B2">
        <qty>2</qty>
        <tag/>
      </item>
      <gift/>
      <city>Zürich</city>
    </order>
  </soap:Body>
</soap:Envelope>"#;
    let there_and_back =
        "name: t\nsteps:\n  - type: xml-to-json\n  - type: json-to-xml\n    indent: 2\n";
    assert_eq!(output(there_and_back, json!(xml)).await, json!(xml));
    let json_first =
        "name: t\nsteps:\n  - type: json-to-xml\n  - type: xml-to-json\n    arrays: [item]\n";
    let value = json!({"catalog": {
        "@version": "2",
        "item": [{"@id": "1", "name": "Pen", "price": "1.5"}, {"@id": "2", "name": "Ink", "note": null}],
        "owner": {"@xmlns:x": "urn:x", "x:name": "Bo", "#text": "text"}
    }});
    assert_eq!(output(json_first, value.clone()).await, value);
}

// ------------------------------------------------------------ load-time checks

#[test]
fn bad_configs_are_reported_at_load_time_with_the_field_path() {
    let text = problems(
        r#"name: t
steps:
  - type: csv-to-json
    delimiter: ";;"
  - type: json-to-csv
    delimeter: ";"
  - type: csv-to-json
    quote: "«"
  - type: json-to-xml
    root: "bad name"
  - type: json-to-xml
    indent: 99
  - type: csv-to-json
    delimiter: ","
    quote: ","
  - type: json-to-csv
    lineEnding: cr
  - type: xml-to-json
    arrays: item
  - type: csv-to-json
    header: "yes"
  - type: json-to-csv
    delimiter: '"'
"#,
    );
    let expect = [
        ("t.yaml:4:5: steps[0].delimiter:", "exactly one character"),
        ("t.yaml:5:5: steps[1]", "unknown field 'delimeter'"),
        ("t.yaml:8:5: steps[2].quote:", "ASCII"),
        (
            "t.yaml:10:5: steps[3].root:",
            "not a valid XML element name",
        ),
        ("t.yaml:12:5: steps[4].indent:", "99"),
        ("steps[5].quote:", "differ from the delimiter"),
        (
            "steps[6].lineEnding:",
            r#""cr" is not one of "lf" or "crlf""#,
        ),
        ("steps[7].arrays:", "array"),
        ("steps[8].header:", "boolean"),
        ("steps[9].delimiter:", "quote character"),
    ];
    for (place, what) in expect {
        assert!(
            text.lines().any(|l| l.contains(place) && l.contains(what)),
            "no line with {place:?} and {what:?} in:\n{text}"
        );
    }
}

#[test]
fn the_steps_are_in_the_catalog_with_schemas() {
    let catalog = sluice_connectors::catalog();
    for name in ["csv-to-json", "json-to-csv", "xml-to-json", "json-to-xml"] {
        assert!(catalog.get(name).is_some(), "{name} missing");
    }
    let schema = catalog.schema().to_string();
    for field in [
        "skipEmptyLines",
        "quoteAll",
        "lineEnding",
        "attributePrefix",
        "stripNamespaces",
        "textKey",
    ] {
        assert!(schema.contains(field), "{field} not in the schema");
    }
}

// ------------------------------------------------------------- doc examples

/// `(line, text)` of every ```yaml pipeline block.
fn pipeline_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().starts_with("```");
        match current.take() {
            None if line.trim_start().starts_with("```yaml pipeline") => {
                current = Some((i + 1, String::new()));
            }
            None => {}
            Some(block) if fence => blocks.push(block),
            Some((start, mut text)) => {
                text.push_str(line);
                text.push('\n');
                current = Some((start, text));
            }
        }
    }
    blocks
}

#[tokio::test]
async fn doc_examples_pass_their_tests() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/connectors");
    let catalog = sluice_connectors::catalog();
    let mut failures = Vec::new();
    for step in ["csv-to-json", "json-to-csv", "xml-to-json", "json-to-xml"] {
        let page = docs.join(format!("{step}.md"));
        let text = std::fs::read_to_string(&page).expect("the doc page exists");
        let blocks = pipeline_blocks(&text);
        assert!(
            blocks
                .iter()
                .any(|(_, y)| y.contains(&format!("type: {step}"))),
            "{step}.md has no example using the step"
        );
        for (line, yaml) in blocks {
            let name = format!("{step}.md:{line}");
            let plan = match load_str(&name, &yaml, Format::Yaml, None, &catalog) {
                Ok(plan) => plan,
                Err(e) => {
                    failures.push(format!("{name}: does not load:\n{e}"));
                    continue;
                }
            };
            assert!(!plan.definition.tests.is_empty(), "{name} has no tests");
            for outcome in run_cases(&plan, &RunOptions::default()).await {
                if let Some(why) = outcome.failure {
                    failures.push(format!("{name} › {}: {why}", outcome.name));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
