/// The registry listing as JSON, shared by `finegrain methods --json` and the service's `GET /v1/methods`.
public enum MethodCatalog {
    public static func json(_ info: MethodInfo) -> JSONValue {
        .object([
            "name": .string(info.name),
            "kind": .string(info.kind.rawValue),
            "summary": .string(info.summary),
            "paper": .object([
                "title": .string(info.paper.title), "year": .number(Double(info.paper.year)),
                "arxiv": info.paper.arxiv.map(JSONValue.string) ?? .null,
            ]),
            "formula": .string(info.formula),
            "requires": .array(info.requires.map(JSONValue.string)),
            "params": .array(info.params.map { p in
                .object([
                    "name": .string(p.name), "type": .string(p.kind.rawValue), "default": p.defaultValue.json,
                    "doc": .string(p.doc), "choices": .array(p.choices.map(JSONValue.string)),
                ])
            }),
        ])
    }
}
