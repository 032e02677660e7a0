// The fault-code library (故障代码库, R42). Every error a person can meet comes from this one
// object: the HTTP layer, the CLI and docs/fault-codes.md all read it. Codes are stable forever;
// retire a code rather than reuse it.
//   1xxx input · 2xxx identity and permission · 3xxx business rules and limits
//   4xxx tax service and contingency · 5xxx storage and backup · 6xxx documents, printing, delivery
//   7xxx capacity, maintenance, degraded mode · 9xxx internal

export interface FaultSpec {
  readonly code: number;
  readonly http: number;
  readonly zh: string;
  readonly en: string;
  readonly cause: string;
  readonly remedy: string;
  readonly remedyEn: string;
}

export interface FieldIssue {
  readonly field: string;
  readonly issue: string;
}

export const faults = {
  ROUTE_NOT_FOUND: {
    code: 1000, http: 404,
    zh: '接口不存在：{route}', en: 'No such endpoint: {route}',
    cause: 'The method or path does not match any endpoint of the API.',
    remedy: '核对请求方法和路径，参见 /api/v1/openapi.json。', remedyEn: 'Check the method and path against /api/v1/openapi.json.',
  },
  BUYER_TAX_ID_INVALID: {
    code: 1001, http: 422,
    zh: '购买方纳税人识别号无效：{reason}', en: 'Buyer taxpayer ID is invalid: {reason}',
    cause: 'The ID has the wrong length, a character not allowed in a USCC, or a wrong check character.',
    remedy: '从购买方营业执照上抄录18位统一社会信用代码；其中不会出现字母 I、O、S、V、Z。',
    remedyEn: "Copy the 18-character 统一社会信用代码 from the buyer's business licence; the letters I, O, S, V and Z never occur in it.",
  },
  REQUEST_MALFORMED: {
    code: 1002, http: 400,
    zh: '请求体不是有效的 JSON：{reason}', en: 'The request body is not valid JSON: {reason}',
    cause: 'The body could not be parsed as JSON (a missing quote, a trailing comma, a truncated upload).',
    remedy: '检查请求体的 JSON 格式，并使用 Content-Type: application/json。', remedyEn: 'Send well-formed JSON with Content-Type: application/json.',
  },
  URL_MALFORMED: {
    code: 1040, http: 400,
    zh: '请求无法解析：{reason}', en: 'The request cannot be read: {reason}',
    cause: 'The request line or the URL is not valid HTTP, e.g. a % not followed by two hexadecimal digits.',
    remedy: '对路径和查询参数中的特殊字符做百分号编码（URL 编码）后重试。', remedyEn: 'Percent-encode special characters in the path and query, then retry.',
  },
  HEADERS_TOO_LARGE: {
    code: 1041, http: 431,
    zh: '请求头过大', en: 'The request headers are too large',
    cause: 'The headers together exceed what the server reads (about 16 KB): an oversized cookie, token or Idempotency-Key.',
    remedy: '缩短请求头（Idempotency-Key 最多 128 个字符），清除多余的 Cookie 后重试。', remedyEn: 'Shorten the headers (an Idempotency-Key has at most 128 characters), drop stale cookies, and retry.',
  },
  REQUEST_TIMEOUT: {
    code: 1042, http: 408,
    zh: '请求未在 {seconds} 秒内发送完毕', en: 'The request was not received within {seconds} seconds',
    cause: 'The client opened the request but sent its headers or body too slowly (a stalled network or a stuck client).',
    remedy: '检查网络连接后重新发送同一请求（开票请使用相同的 Idempotency-Key）。', remedyEn: 'Check the network and send the same request again (for an invoice, with the same Idempotency-Key).',
  },
  FIELD_INVALID: {
    code: 1003, http: 422,
    zh: '字段 {field} 的值无效：{reason}', en: 'Field {field} is invalid: {reason}',
    cause: 'A field has the wrong type or format.',
    remedy: '按接口文档填写该字段（金额、数量、单价均为十进制字符串）。', remedyEn: 'Fill the field as the API description says (amounts, quantities and prices are decimal strings).',
  },
  FIELD_UNKNOWN: {
    code: 1004, http: 422,
    zh: '不认识的字段：{field}', en: 'Unknown field: {field}',
    cause: 'The request contains a field the API does not define, often a misspelling.',
    remedy: '删除该字段或更正拼写。', remedyEn: 'Remove the field or correct its spelling.',
  },
  FIELD_MISSING: {
    code: 1005, http: 422,
    zh: '缺少必填字段：{field}', en: 'Required field is missing: {field}',
    cause: 'A required field was not sent.',
    remedy: '补充该字段后重试。', remedyEn: 'Add the field and send the request again.',
  },
  LINES_EMPTY: {
    code: 1006, http: 422,
    zh: '发票至少需要一行商品或服务明细', en: 'An invoice needs at least one line',
    cause: 'The lines array is empty.',
    remedy: '添加至少一行明细（名称、税收分类编码、数量、单价、税率）。', remedyEn: 'Add at least one line (name, tax code, quantity, unit price, rate).',
  },
  LINES_TOO_MANY: {
    code: 1007, http: 422,
    zh: '明细行过多：{count} 行，最多 {max} 行', en: 'Too many lines: {count}, at most {max}',
    cause: 'One invoice can carry a limited number of lines.',
    remedy: '把明细拆分到多张发票。', remedyEn: 'Split the lines over several invoices.',
  },
  QUANTITY_INVALID: {
    code: 1008, http: 422,
    zh: '{field} 数量无效：{reason}', en: 'Quantity {field} is invalid: {reason}',
    cause: 'The quantity is not a positive decimal string with at most 8 decimal places, or is absurdly large.',
    remedy: '填写大于 0 的数量，例如 "1" 或 "2.5"。', remedyEn: 'Enter a quantity greater than 0, such as "1" or "2.5".',
  },
  UNIT_PRICE_INVALID: {
    code: 1009, http: 422,
    zh: '{field} 单价无效：{reason}', en: 'Unit price {field} is invalid: {reason}',
    cause: 'The unit price is not a positive decimal string with at most 8 decimal places, or is absurdly large.',
    remedy: '填写大于 0 的单价，例如 "1000.00"。', remedyEn: 'Enter a unit price greater than 0, such as "1000.00".',
  },
  TAX_RATE_UNKNOWN: {
    code: 1010, http: 422,
    zh: '{field} 税率不受支持：{value}', en: 'Tax rate {field} is not supported: {value}',
    cause: 'The rate is not one of the VAT rates in force.',
    remedy: '使用 0.13、0.09、0.06、0.05、0.03、0.01、0，或 "exempt"（免税）、"non_taxable"（不征税）。',
    remedyEn: 'Use 0.13, 0.09, 0.06, 0.05, 0.03, 0.01, 0, or "exempt" (免税) or "non_taxable" (不征税).',
  },
  AMOUNT_INVALID: {
    code: 1011, http: 422,
    zh: '{field} 金额格式无效：{reason}', en: 'Amount {field} is not a valid amount: {reason}',
    cause: 'Amounts are decimal strings in yuan with at most two decimal places.',
    remedy: '以字符串填写金额，例如 "1000.00"。', remedyEn: 'Write the amount as a string such as "1000.00".',
  },
  AMOUNT_OUT_OF_RANGE: {
    code: 1012, http: 422,
    zh: '{field} 金额超出允许范围：{reason}', en: 'Amount {field} is out of range: {reason}',
    cause: 'The amount is zero after rounding, or larger than any invoice may carry.',
    remedy: '核对数量和单价；金额过大时拆分为多张发票。', remedyEn: 'Check quantity and unit price; split very large amounts over several invoices.',
  },
  TAX_TOLERANCE_EXCEEDED: {
    code: 1013, http: 422,
    zh: '{field} 税额误差超出规定：{reason}', en: 'Tax on {field} is outside the official tolerance: {reason}',
    cause: 'The amounts break the checks of the official invoicing software (±0.01 per amount, ±0.06 per line tax, ±1.27 per invoice).',
    remedy: '由系统根据数量、单价和税率计算金额与税额，不要手工调整。', remedyEn: 'Let the system compute amount and tax from quantity, price and rate; do not adjust them by hand.',
  },
  TEXT_INVALID: {
    code: 1014, http: 422,
    zh: '{field} 含有不允许的内容：{reason}', en: 'Field {field} contains something not allowed: {reason}',
    cause: 'Invoice text may not contain control characters, emoji, the replacement character � (left where text in another encoding was read as UTF-8) or half of a character (a lone surrogate), and has a maximum length.',
    remedy: '删除不可见字符或表情符号，并缩短文本；含 � 的文本请从原处重新复制，或把文件另存为 UTF-8 后重试。',
    remedyEn: 'Remove invisible characters or emoji and shorten the text; where the text holds �, copy it again from its source, or save the file as UTF-8 and try again.',
  },
  SELLER_TAX_ID_INVALID: {
    code: 1015, http: 422,
    zh: '销售方纳税人识别号无效：{reason}', en: 'Seller taxpayer ID is invalid: {reason}',
    cause: "The merchant's ID has the wrong length, an illegal character, or a wrong check character.",
    remedy: '从营业执照上抄录18位统一社会信用代码。', remedyEn: "Copy the 18-character 统一社会信用代码 from the merchant's business licence.",
  },
  DATE_INVALID: {
    code: 1016, http: 422,
    zh: '{field} 日期无效：{reason}', en: 'Date {field} is invalid: {reason}',
    cause: 'Dates are calendar dates written YYYY-MM-DD (Asia/Shanghai).',
    remedy: '按 YYYY-MM-DD 填写真实存在的日期，例如 2026-11-22。', remedyEn: 'Write an existing date as YYYY-MM-DD, for example 2026-11-22.',
  },
  BODY_TOO_LARGE: {
    code: 1017, http: 413,
    zh: '请求体过大（上限 {limit} 字节）', en: 'Request body too large (limit {limit} bytes)',
    cause: 'The request is larger than the server accepts.',
    remedy: '减少明细行或拆分为多张发票。', remedyEn: 'Send fewer lines or split the invoice.',
  },
  QUERY_INVALID: {
    code: 1018, http: 422,
    zh: '查询条件 {field} 无效：{reason}', en: 'Query parameter {field} is invalid: {reason}',
    cause: 'A filter or cursor of the query could not be understood.',
    remedy: '核对查询参数；游标请原样使用上一页返回的 next_cursor。', remedyEn: 'Check the parameters; pass next_cursor back exactly as the previous page returned it.',
  },
  IDEMPOTENCY_KEY_INVALID: {
    code: 1019, http: 422,
    zh: 'Idempotency-Key 无效：{reason}', en: 'Idempotency-Key is invalid: {reason}',
    cause: 'The key must be 1–128 visible ASCII characters.',
    remedy: '为每次开票生成一个 UUID 作为 Idempotency-Key，重试时使用同一个值。', remedyEn: 'Use a fresh UUID per invoice as Idempotency-Key, and the same one when you retry.',
  },
  REGION_CODE_INVALID: {
    code: 1020, http: 422,
    zh: '地区代码无效：{reason}', en: 'Region code is invalid: {reason}',
    cause: 'The region code is the 2-digit province code that starts every invoice number.',
    remedy: '填写省级行政区划代码的前两位，例如北京 11、上海 31、广东 44。', remedyEn: 'Use the 2-digit province code, e.g. 11 Beijing, 31 Shanghai, 44 Guangdong.',
  },
  CONTENT_TYPE_UNSUPPORTED: {
    code: 1021, http: 415,
    zh: '不支持的内容类型：{type}', en: 'Unsupported content type: {type}',
    cause: 'The API accepts JSON bodies in UTF-8 only: another media type, or a charset other than UTF-8 (e.g. charset=gbk), is refused.',
    remedy: '使用 Content-Type: application/json（可加 charset=utf-8），并以 UTF-8 编码发送请求体。', remedyEn: 'Send Content-Type: application/json (charset=utf-8 may be added) with the body encoded as UTF-8.',
  },
  FAULT_CODE_UNKNOWN: {
    code: 1023, http: 404,
    zh: '没有代码为 {code} 的故障', en: 'There is no fault with the code {code}',
    cause: 'Fault codes have four digits (1xxx input … 9xxx internal), and this one is not in the catalogue: mistyped, or cut from a longer message.',
    remedy: '核对错误应答中的 code；全部故障代码见 GET /api/v1/errors 或 fapiao errors。', remedyEn: 'Check the code in the error answer; GET /api/v1/errors or `fapiao errors` lists every code.',
  },
  TEXT_NOT_UTF8: {
    code: 1024, http: 400,
    zh: '{source} 不是 UTF-8 编码的文本', en: '{source} is not UTF-8 text',
    cause: 'Some bytes are not valid UTF-8: usually a file saved as GBK/GB18030 (the default of Chinese Windows) or a client that encodes text in another charset. Read as UTF-8 anyway, its Chinese would reach the invoice as replacement characters (�).',
    remedy: '把文件另存为 UTF-8 编码后重试（例如 iconv -f GBK -t UTF-8 原文件 > 新文件，或在编辑器“另存为”时选择 UTF-8）；程序调用接口时请以 UTF-8 编码发送请求体。',
    remedyEn: 'Save the file as UTF-8 and try again (e.g. iconv -f GBK -t UTF-8 old.json > new.json, or choose UTF-8 in your editor\'s "Save as"); a program calling the API must encode the body as UTF-8.',
  },
  TEXT_NOT_PRINTABLE: {
    code: 1025, http: 422,
    zh: '{field} 第 {position} 个字符“{character}”（{codePoint}）无法打印在发票上', en: 'Field {field}: the character {character} ({codePoint}) at position {position} cannot be printed on the invoice',
    cause: 'The font invoices are printed in (Noto Sans SC, some 30,000 characters) has no glyph for it, so it would print as an empty box. Mostly rare ideographs of CJK Extension B and later.',
    remedy: '改用该字的通用写法或常用异体字（例如把“𠮷”写作“吉”）；登记名称中确实使用此字的，请联系技术支持。',
    remedyEn: 'Write the character in its common form or a common variant (e.g. 吉 for 𠮷); if a registered name really uses it, contact support.',
  },
  RECONCILE_DATE_INVALID: {
    code: 1050, http: 422,
    zh: '对账日期无效：{date}（格式 YYYY-MM-DD，且不晚于今天）', en: 'Invalid reconciliation date: {date} (YYYY-MM-DD, not after today)',
    cause: 'The date is not a real calendar date in the form YYYY-MM-DD, or lies in the future (Asia/Shanghai).',
    remedy: '使用 YYYY-MM-DD 格式的已过去或当天的日期，例如 2026-11-21。', remedyEn: 'Give a past or current date as YYYY-MM-DD, e.g. 2026-11-21.',
  },
  SANDBOX_FAULT_INVALID: {
    code: 1051, http: 422,
    zh: '沙箱设置无效：{reason}', en: 'Invalid sandbox setting: {reason}',
    cause: 'A fault mode is unknown, a rate is not between 0 and 1, a duration, delay or limit is not a positive number, or an amount is not whole fen.',
    remedy: '故障模式见 docs/tax-service-protocol.md；比例取 0 到 1 之间。', remedyEn: 'See docs/tax-service-protocol.md for the modes; the rate is between 0 and 1.',
  },
  RECONCILIATION_ACTION_INVALID: {
    code: 1052, http: 422,
    zh: '对账差异处理方式无效：{reason}', en: 'Invalid action on a reconciliation difference: {reason}',
    cause: 'Only differences of an invoice kept locally can be uploaded again; "investigated" needs a note.',
    remedy: '缺少本地记录的差异请标记为已调查并写明结论。', remedyEn: 'Mark a difference with no local invoice as investigated and write down what was found.',
  },
  LOGIN_FAILED: {
    code: 2001, http: 401,
    zh: '用户名或密码错误', en: 'Wrong user name or password',
    cause: 'The user does not exist or the password does not match. After 5 failures in a row the account is locked for a growing time.',
    remedy: '核对用户名和密码（注意大小写和输入法）；忘记密码请联系商户管理员重置。', remedyEn: "Check user name and password (case, input method); ask the merchant's owner to reset a forgotten password.",
  },
  ACCOUNT_LOCKED: {
    code: 2002, http: 423,
    zh: '登录失败次数过多，账户已临时锁定，请在 {seconds} 秒后重试', en: 'Too many failed logins; the account is locked for {seconds} seconds',
    cause: 'Repeated wrong passwords lock the account for a growing time, against password guessing.',
    remedy: '等待锁定结束后再试；如非本人操作，请联系商户管理员修改密码。', remedyEn: "Wait until the lock ends; if it was not you, ask the merchant's owner to change the password.",
  },
  AUTH_REQUIRED: {
    code: 2003, http: 401,
    zh: '需要登录或提供 API 密钥', en: 'Login or an API key is required',
    cause: 'The request carried neither a session cookie nor an Authorization: Bearer key.',
    remedy: '先登录，或在请求头加入 Authorization: Bearer <API 密钥>。', remedyEn: 'Log in, or send Authorization: Bearer <api key>.',
  },
  API_KEY_INVALID: {
    code: 2004, http: 401,
    zh: 'API 密钥无效或已被吊销', en: 'The API key is invalid or revoked',
    cause: 'The key is unknown, mistyped or revoked.',
    remedy: '在商户后台创建新的 API 密钥，并完整复制（只显示一次）。', remedyEn: 'Create a new key and copy it whole (it is shown once).',
  },
  SESSION_EXPIRED: {
    code: 2005, http: 401,
    zh: '登录已过期，请重新登录', en: 'The session has expired; log in again',
    cause: 'Sessions end after a period of inactivity or on logout.',
    remedy: '重新登录。', remedyEn: 'Log in again.',
  },
  PERMISSION_DENIED: {
    code: 2006, http: 403,
    zh: '当前角色（{role}）无权执行：{action}', en: 'Role {role} may not perform: {action}',
    cause: 'Each role has the least privilege its work needs (owner, clerk, auditor, operator).',
    remedy: '请有权限的同事操作，或请商户管理员调整角色。', remedyEn: "Ask a colleague with the right role, or ask the merchant's owner to change your role.",
  },
  USER_EXISTS: {
    code: 2007, http: 409,
    zh: '用户名已存在：{username}', en: 'User name already taken: {username}',
    cause: 'User names are unique across the platform.',
    remedy: '换一个用户名。', remedyEn: 'Choose another user name.',
  },
  PASSWORD_TOO_WEAK: {
    code: 2008, http: 422,
    zh: '密码强度不足：{reason}', en: 'Password too weak: {reason}',
    cause: 'Passwords need at least 10 characters.',
    remedy: '使用至少10个字符的密码，可以是一句话。', remedyEn: 'Use at least 10 characters; a phrase works well.',
  },
  API_KEY_NOT_FOUND: {
    code: 2009, http: 404,
    zh: '没有编号为 {id} 的 API 密钥', en: 'No API key with id {id}',
    cause: 'The key does not exist, or belongs to another merchant.',
    remedy: '用 GET /api/v1/api-keys 查看本商户的密钥编号。', remedyEn: 'List your merchant\'s keys with GET /api/v1/api-keys.',
  },
  INVOICE_NOT_FOUND: {
    code: 3001, http: 404,
    zh: '未找到发票：{number}', en: 'Invoice not found: {number}',
    cause: 'No invoice of your merchant has this number.',
    remedy: '核对20位发票号码；发票号码在开具成功后立即可查。', remedyEn: 'Check the 20-digit number; an invoice is findable as soon as issuing succeeds.',
  },
  IDEMPOTENCY_KEY_REUSED: {
    code: 3002, http: 409,
    zh: '该 Idempotency-Key 已用于另一张内容不同的发票（{number}）', en: 'This Idempotency-Key was already used for a different invoice ({number})',
    cause: 'A key identifies one invoice request; the same key came with a different body.',
    remedy: '重试时请发送与首次完全相同的内容；开具新发票请使用新的 Idempotency-Key。', remedyEn: 'Resend exactly the first body when retrying; use a new key for a new invoice.',
  },
  DAILY_LIMIT_REACHED: {
    code: 3003, http: 422,
    zh: '已达到今日开票张数上限（{limit} 张）', en: 'Daily invoice limit reached ({limit} invoices)',
    cause: 'The merchant may issue a limited number of invoices per day (Asia/Shanghai).',
    remedy: '明日再开具，或联系主管税务机关调整开票限额。', remedyEn: 'Issue tomorrow, or ask the tax office to raise the daily limit.',
  },
  CREDIT_LINE_EXCEEDED: {
    code: 3004, http: 422,
    zh: '超出本月授信额度：{binding}；剩余 {remaining} 元，本张发票 {amount} 元（不含税）',
    en: 'Monthly credit line exceeded: {binding}; {remaining} yuan left, this invoice {amount} yuan (before tax)',
    cause: "The pre-tax total issued in a month may not exceed the credit line: the lower of the tax service's grant (授信额度) and the platform operator's own limit, whichever is set.",
    remedy: '降低本张金额，或下月再开具。税务机关授信额度生效时，向主管税务机关申请调高（下次同步条款时生效，默认10分钟内）；平台运营方限额生效时，请运营方调高或取消（fapiao merchant limits --monthly-credit <元>|none）。GET /api/v1/merchant 的 credit_line 显示两个额度及生效的一个。',
    remedyEn: "Lower the amount, or issue next month. When the tax service's grant binds, apply to the tax office for a higher credit line (it reaches Fapiao at the next terms refresh, by default within 10 minutes); when the operator's limit binds, ask the platform operator to raise or lift it (fapiao merchant limits --monthly-credit <yuan>|none). GET /api/v1/merchant shows both in credit_line, and which binds.",
  },
  INVOICE_STATE_CONFLICT: {
    code: 3005, http: 409,
    zh: '发票 {number} 当前状态为{status}，不能{action}', en: 'Invoice {number} is {status} and cannot be {action}',
    cause: 'Each invoice state allows only some actions (see docs/architecture.md, invoice states).',
    remedy: '刷新后查看发票当前状态；已作废的发票无需再次作废。', remedyEn: 'Reload to see the current state; a voided invoice needs no second void.',
  },
  MERCHANT_NOT_FOUND: {
    code: 3006, http: 404,
    zh: '商户不存在：{merchant}', en: 'Merchant not found: {merchant}',
    cause: 'No merchant has this ID.',
    remedy: '用 fapiao merchant list 查看商户编号。', remedyEn: 'List merchants with `fapiao merchant list`.',
  },
  VOID_PERIOD_CLOSED: {
    code: 3007, http: 409,
    zh: '发票 {number} 开具于 {month}，跨月发票不能作废，请开具红字发票', en: 'Invoice {number} was issued in {month}; invoices of a past month cannot be voided, reverse it with a red-letter invoice',
    cause: 'An invoice may be voided only in the calendar month (Asia/Shanghai) it was issued in.',
    remedy: '对跨月发票开具红字发票冲销。', remedyEn: 'Issue a red-letter invoice to reverse it.',
  },
  ALERT_NOT_FOUND: {
    code: 3010, http: 404,
    zh: '预警不存在：{id}', en: 'No such alert: {id}',
    cause: "No alert of your merchant has this id: it was never raised, or it belongs to another merchant.",
    remedy: '用 GET /api/v1/alerts 查看本商户的预警及其编号。', remedyEn: "List your merchant's alerts and their ids with GET /api/v1/alerts.",
  },
  SAVED_ENTRY_NOT_FOUND: {
    code: 3008, http: 404,
    zh: '常用{kind}不存在：{id}', en: 'Saved {kind} not found: {id}',
    cause: 'The saved buyer or item was deleted or belongs to another merchant.',
    remedy: '刷新常用列表后重新选择。', remedyEn: 'Reload the saved list and choose again.',
  },
  MERCHANT_EXISTS: {
    code: 3009, http: 409,
    zh: '纳税人识别号 {taxId} 的商户已存在', en: 'A merchant with taxpayer ID {taxId} already exists',
    cause: 'Each taxpayer is one merchant.',
    remedy: '使用已有商户，或核对纳税人识别号。', remedyEn: 'Use the existing merchant or check the taxpayer ID.',
  },
  STORAGE_UNAVAILABLE: {
    code: 5001, http: 503,
    zh: '数据库暂时不可用，请在 {seconds} 秒后重试；已成功开具的发票不受影响', en: 'Storage is temporarily unavailable; retry in {seconds} s. Invoices already issued are safe',
    cause: 'The database could not be reached or is not writable right now.',
    remedy: '稍后用同一个 Idempotency-Key 重试，不会重复开票；持续出现请联系运维。', remedyEn: 'Retry later with the same Idempotency-Key (no duplicate will be made); tell operations if it persists.',
  },
  STORAGE_FULL: {
    code: 5002, http: 507,
    zh: '存储空间已满，暂时无法保存新数据', en: 'Storage is full; new data cannot be saved right now',
    cause: 'The disk holding the database has no free space.',
    remedy: '运维人员清理或扩容数据盘后服务会自动恢复；已开具的发票不受影响。', remedyEn: 'Operations must free or add disk space; service resumes by itself. Issued invoices are safe.',
  },
  CHAIN_BROKEN: {
    code: 5003, http: 500,
    zh: '商户 {merchant} 的发票哈希链在 {number} 处断裂：{reason}', en: "Merchant {merchant}'s invoice hash chain breaks at {number}: {reason}",
    cause: 'A stored invoice was changed, deleted or inserted outside the application.',
    remedy: '立即停止修改数据库，保全现场，从最近一次校验通过的备份比对并恢复，并开启安全事件。', remedyEn: 'Stop changes to the database, preserve evidence, compare with the last verified backup and open a security incident.',
  },
  BACKUP_FAILED: {
    code: 5004, http: 500,
    zh: '备份未完成：{reason}', en: 'The backup did not complete: {reason}',
    cause: 'Copying the database failed (disk full, no write permission on the backup directory, pg_dump missing or refused). No backup that looks complete was left behind.',
    remedy: '按原因处理（清理或扩容备份盘、检查目录权限、安装与服务器版本相同的 pg_dump）后重新备份。', remedyEn: 'Fix the cause (free or add backup disk space, check directory permissions, install a pg_dump matching the server) and back up again.',
  },
  BACKUP_VERIFICATION_FAILED: {
    code: 5005, http: 500,
    zh: '备份 {backup} 校验失败：{reason}', en: 'Backup {backup} failed verification: {reason}',
    cause: 'The backup was restored into a scratch database and did not match: row counts differ from its manifest, a hash chain breaks, or it could not be restored at all. Restore refuses such a backup.',
    remedy: '不要依赖这份备份；立即对在线数据库执行 fapiao chain verify，排除问题后重新备份。', remedyEn: 'Do not rely on this backup; run `fapiao chain verify` on the live database, fix what it finds and back up again.',
  },
  BACKUP_CORRUPT: {
    code: 5006, http: 422,
    zh: '备份已损坏：{reason}', en: 'The backup is corrupt: {reason}',
    cause: 'A file of the backup is missing, has another size, or its SHA-256 does not match the manifest: it was damaged in storage or in transfer.',
    remedy: '改用另一份备份（较早的或异地副本）；检查存放备份的磁盘。', remedyEn: 'Use another copy or an earlier backup; check the disk that holds the backups.',
  },
  BACKUP_FOREIGN: {
    code: 5007, http: 422,
    zh: '不是本系统可用的备份：{reason}', en: 'Not a backup this installation can use: {reason}',
    cause: 'The directory has no Fapiao manifest, was made from the other kind of database (SQLite or PostgreSQL), or its data does not match its manifest (chain heads, merchants, row counts or hash chains).',
    remedy: '核对备份目录与当前数据库类型（DATABASE_URL）；使用由本系统对同类数据库生成的备份。', remedyEn: 'Check the backup directory and the configured database (DATABASE_URL); use a backup Fapiao made of the same kind of database.',
  },
  BACKUP_FROM_NEWER_VERSION: {
    code: 5008, http: 422,
    zh: '备份来自更新版本的程序（{version}），本程序最多支持到 {supported}', en: 'The backup was made by a newer version ({version}); this program knows up to {supported}',
    cause: 'The backup carries a schema (or backup format) newer than this program understands; restoring it would lose or misread data.',
    remedy: '先升级本程序到生成该备份的版本或更新版本，再恢复。', remedyEn: 'Upgrade this program to the version that made the backup, or later, then restore.',
  },
  RESTORE_DATABASE_IN_USE: {
    code: 5009, http: 409,
    zh: '数据库正在使用中，不能恢复：{reason}', en: 'The database is in use and cannot be restored: {reason}',
    cause: 'A restore replaces the whole database; another process (a running server or a command) still has it open or locked.',
    remedy: '先停止所有 fapiao 服务进程，再执行恢复；只检查备份可用 --dry-run，无需停机。', remedyEn: 'Stop every fapiao server process first, then restore; --dry-run checks a backup without stopping anything.',
  },
  BACKUP_KEY_INVALID: {
    code: 5010, http: 422,
    zh: '备份加密密钥无效或缺失：{reason}', en: 'The backup encryption key is wrong or missing: {reason}',
    cause: 'The backup is encrypted and no key, another key, or an unusable key file was given (it must hold 32 raw bytes or 64 hex digits and must not be readable by everyone).',
    remedy: '用 --key-file 指定备份时使用的密钥文件，并设置权限 chmod 600。', remedyEn: 'Pass the key file the backup was made with (--key-file) and make it private (chmod 600).',
  },
  RESTORE_FAILED: {
    code: 5011, http: 500,
    zh: '恢复未完成，数据库保持原状：{reason}', en: 'The restore did not complete; the database is unchanged: {reason}',
    cause: 'Moving the verified copy into place failed (disk full, permissions, psql refused). The restore works on a copy and swaps it in as one step, so nothing was changed.',
    remedy: '按原因处理后重新执行恢复。', remedyEn: 'Fix the cause and run the restore again.',
  },
  UPSTREAM_UNREACHABLE: {
    code: 4001, http: 503,
    zh: '无法连接税务服务：{reason}', en: 'The tax service cannot be reached: {reason}',
    cause: 'The connection to the tax service was refused or reset, or its address does not resolve: it is down or the network is cut.',
    remedy: '开票不受影响（离线开具，稍后自动上传）；检查网络和 FAPIAO_UPSTREAM_URL。', remedyEn: 'Issuing goes on offline and uploads follow automatically; check the network and FAPIAO_UPSTREAM_URL.',
  },
  UPSTREAM_TIMEOUT: {
    code: 4002, http: 504,
    zh: '税务服务在 {ms} 毫秒内未应答', en: 'The tax service did not answer within {ms} ms',
    cause: 'The tax service is overloaded or hangs; a request that timed out may or may not have been processed.',
    remedy: '无需操作：上传前会先查询状态，不会重复上传；持续超时请查看税务服务公告。', remedyEn: 'Nothing to do: status is queried before any resend, so nothing is uploaded twice; if it persists, check the tax service\'s announcements.',
  },
  UPSTREAM_CIRCUIT_OPEN: {
    code: 4003, http: 503,
    zh: '税务服务连续失败，暂停调用至 {until}', en: 'The tax service failed repeatedly; calls paused until {until}',
    cause: 'After several failures in a row the client stops calling for a while (circuit breaker) so a struggling service can recover.',
    remedy: '等待自动恢复；开票在离线限额内继续。', remedyEn: 'Wait for it to recover by itself; issuing continues within the offline limits.',
  },
  UPSTREAM_SIGNATURE_REFUSED: {
    code: 4004, http: 502,
    zh: '税务服务拒绝了请求签名：{reason}', en: 'The tax service refused the request signature: {reason}',
    cause: 'The merchant\'s signing key is unknown or revoked, the server clock is off by more than 5 minutes, or a nonce was reused.',
    remedy: '校准服务器时间（NTP）；若密钥失效，删除该商户的税务服务凭据后重新注册。', remedyEn: 'Synchronise the server clock (NTP); if the key is no longer valid, delete the merchant\'s tax-service credentials and enrol again.',
  },
  UPSTREAM_PROTOCOL_ERROR: {
    code: 4005, http: 502,
    zh: '税务服务的应答无法理解：{reason}', en: 'The tax service\'s answer cannot be understood: {reason}',
    cause: 'The answer was not the JSON the protocol describes (a proxy error page, a truncated body, a newer protocol version).',
    remedy: '检查 FAPIAO_UPSTREAM_URL 是否指向税务服务本身，而非代理或登录页。', remedyEn: 'Check that FAPIAO_UPSTREAM_URL points at the tax service itself, not a proxy or a login page.',
  },
  UPSTREAM_SERVER_ERROR: {
    code: 4006, http: 502,
    zh: '税务服务内部错误（HTTP {status}）', en: 'The tax service failed (HTTP {status})',
    cause: 'The tax service answered with a 5xx status: nothing was processed by that request.',
    remedy: '无需操作：会自动退避重试。', remedyEn: 'Nothing to do: the call is retried with backoff.',
  },
  UPSTREAM_FLOW_CONTROL: {
    code: 4007, http: 503,
    zh: '税务服务要求等待 {seconds} 秒后再提交', en: 'The tax service asks to wait {seconds} s before the next submission',
    cause: 'Flow control: the tax service sets the least time between two submissions of one taxpayer.',
    remedy: '无需操作：上传会按要求的间隔继续。', remedyEn: 'Nothing to do: uploads continue at the interval asked for.',
  },
  UPSTREAM_NOT_ENROLLED: {
    code: 4008, http: 503,
    zh: '商户 {seller} 尚未在税务服务注册签名密钥：{reason}', en: 'Merchant {seller} has no signing key at the tax service: {reason}',
    cause: 'Fapiao holds no credentials for this taxpayer at the configured tax service, and the tax service refused to enrol it (enrolment is closed or the taxpayer is not allowed); a tax service that cannot be reached is 4001 instead.',
    remedy: '在税务服务为该纳税人开通接口并录入密钥；沙箱会自动注册。', remedyEn: 'Open API access for the taxpayer at the tax service and record its key; the sandbox enrols automatically.',
  },
  UPSTREAM_REQUEST_REFUSED: {
    code: 4009, http: 502,
    zh: '税务服务拒绝了请求：{reason}', en: 'The tax service refused the request: {reason}',
    cause: 'The tax service found the request itself wrong (too many records, a malformed field, an unknown taxpayer).',
    remedy: '按原因修正；如为程序缺陷，请联系技术支持。', remedyEn: 'Correct what the reason names; if it is a defect, contact support.',
  },
  RECONCILIATION_NOT_FOUND: {
    code: 4010, http: 404,
    zh: '对账记录不存在：{id}', en: 'No such reconciliation record: {id}',
    cause: 'The report or difference does not exist, or belongs to another merchant.',
    remedy: '用 GET /api/v1/reconciliations 查看现有对账报告。', remedyEn: 'List the reports with GET /api/v1/reconciliations.',
  },
  RECONCILIATION_ALREADY_RESOLVED: {
    code: 4011, http: 409,
    zh: '该对账差异已处理：{resolution}', en: 'This difference is already resolved: {resolution}',
    cause: 'Someone already re-uploaded the invoice or marked the difference as investigated.',
    remedy: '刷新对账报告；如仍有差异，重新对账会生成新的记录。', remedyEn: 'Reload the report; a new reconciliation lists any difference still there.',
  },
  NUMBERS_EXHAUSTED: {
    code: 4020, http: 503,
    zh: '{year} 年的发票号码已用完，正在向税务服务申请新号段', en: 'No invoice numbers left for {year}; a new block is being requested from the tax service',
    cause: 'Invoice numbers come in blocks (号段) from the tax service. The reserve ran out, usually because the tax service has been unreachable longer than the reserve lasts.',
    remedy: '稍后用同一个 Idempotency-Key 重试；恢复与税务服务的连接后号段会自动补充。紧急时运维可录入税务机关分配的号段（fapiao numbers grant）。',
    remedyEn: 'Retry later with the same Idempotency-Key; blocks are refilled automatically once the tax service is reachable. In an emergency operations can enter a block the tax office assigned (`fapiao numbers grant`).',
  },
  CONTINGENCY_HOURS_EXCEEDED: {
    code: 4021, http: 503,
    zh: '离线开票时间超限：最早一张未上传的{kind}已开具 {hours} 小时（上限 {max} 小时），暂停开具{kind}', en: 'Offline time limit reached: the oldest un-uploaded {kind} invoice was issued {hours} h ago (limit {max} h); issuing {kind} invoices is paused',
    cause: 'While the tax service is unreachable, invoices may be issued offline only for a limited time after the oldest one not yet uploaded (离线开票时限, set by the tax service).',
    remedy: '恢复与税务服务的连接（检查网络、查看 GET /api/v1/status）；积压发票上传后自动解锁，无需其他操作。',
    remedyEn: 'Restore the connection to the tax service (check the network, see GET /api/v1/status); issuing unlocks by itself once the backlog is uploaded.',
  },
  CONTINGENCY_AMOUNT_EXCEEDED: {
    code: 4022, http: 503,
    zh: '离线开票金额超限：未上传{kind}不含税合计 {pending} 元，加上本张 {amount} 元将超过上限 {max} 元', en: 'Offline amount limit reached: un-uploaded {kind} invoices total {pending} yuan before tax; this one ({amount} yuan) would pass the limit of {max} yuan',
    cause: 'While the tax service is unreachable, the pre-tax total of invoices not yet uploaded may not exceed the offline amount limit (离线开票限额, set by the tax service).',
    remedy: '恢复与税务服务的连接；积压发票上传后额度自动释放。金额较小的发票在剩余额度内仍可开具。',
    remedyEn: 'Restore the connection to the tax service; the amount frees itself as the backlog is uploaded. Smaller invoices within the remaining amount can still be issued.',
  },
  NUMBER_BLOCK_INVALID: {
    code: 4023, http: 422,
    zh: '号段无效：{reason}', en: 'Invalid number block: {reason}',
    cause: 'A block must lie within 1–999999999999999 for one year and must not overlap a block the merchant already holds.',
    remedy: '核对税务机关分配的号段起止号码和年度。', remedyEn: 'Check the first and last numbers and the year of the block the tax office assigned.',
  },
  UPLOAD_REJECTED: {
    code: 4024, http: 409,
    zh: '税务服务拒收发票 {number}：{reason}', en: 'The tax service rejected invoice {number}: {reason}',
    cause: 'The tax service checked the uploaded invoice and refused it by one of its rules (the reason says which). The invoice stays in Fapiao, marked rejected.',
    remedy: '按拒收原因处理：内容有误时开具红字发票冲销并重新开具正确的发票；原因不明请带发票号码联系主管税务机关。',
    remedyEn: 'Act on the reason: if the content is wrong, reverse it with a red-letter invoice and issue a correct one; if the reason is unclear, contact the tax office with the invoice number.',
  },
  UPLOAD_CONFLICT: {
    code: 4025, http: 409,
    zh: '发票 {number} 已隔离：税务服务持有的同号发票内容不同（摘要 {held}）', en: 'Invoice {number} is quarantined: the tax service holds different content under this number (digest {held})',
    cause: 'The tax service already holds an invoice with this number whose content digest differs from ours — a number used twice, or content changed after an upload. Nothing was overwritten; both versions are kept.',
    remedy: '不要重开此号码；运维核对两份内容（本地发票与税务服务记录）并联系主管税务机关处理，处理前该发票不计入已上传。',
    remedyEn: 'Do not reissue this number; operations compare both versions (ours and the tax service\'s record) and settle it with the tax office; until then the invoice does not count as uploaded.',
  },
  VOID_REFUSED: {
    code: 4026, http: 409,
    zh: '税务服务拒绝作废发票 {number}：{reason}', en: 'The tax service refused to void invoice {number}: {reason}',
    cause: 'The invoice is voided in Fapiao, but the tax service refused the void (the reason says why: it does not hold the invoice, the invoice was already reversed, or the month of issue is closed there). Until this is settled the tax service still counts the invoice as valid.',
    remedy: '按原因处理：税务服务未收到该发票时先对账（fapiao reconcile）并重新上传；已红冲或跨月时改为开具红字发票；原因不明请带发票号码联系主管税务机关。',
    remedyEn: 'Act on the reason: if the tax service does not hold the invoice, reconcile (fapiao reconcile) and upload it again; if it was reversed or the month is closed there, issue a red-letter invoice instead; if unclear, contact the tax office with the invoice number.',
  },
  WEBHOOK_URL_INVALID: {
    code: 1030, http: 422,
    zh: 'Webhook 地址无效：{reason}', en: 'Webhook URL is invalid: {reason}',
    cause: 'Webhooks go to an absolute http:// or https:// URL without user name or password, at most 2,000 characters.',
    remedy: '填写接收系统的完整地址，例如 https://erp.example.cn/fapiao/webhook。', remedyEn: 'Enter the full address of the receiving system, e.g. https://erp.example.cn/fapiao/webhook.',
  },
  EMAIL_ADDRESS_INVALID: {
    code: 1031, http: 422,
    zh: '电子邮箱地址无效：{address}', en: 'Email address is invalid: {address}',
    cause: 'The address is not of the form name@domain, or is longer than 254 characters.',
    remedy: '核对购买方邮箱，例如 ap@example.cn。', remedyEn: "Check the buyer's address, e.g. ap@example.cn.",
  },
  PRINTER_TARGET_INVALID: {
    code: 1032, http: 422,
    zh: '打印机设置无效：{reason}', en: 'Printer settings are invalid: {reason}',
    cause: 'A CUPS printer needs the queue name as CUPS knows it (letters, digits, - and _); a directory printer needs an absolute directory path.',
    remedy: '用 lpstat -p 查看 CUPS 队列名；目录打印机填写绝对路径，例如 /srv/print/inbox。', remedyEn: 'See the CUPS queue names with lpstat -p; give a directory printer an absolute path such as /srv/print/inbox.',
  },
  WEBHOOK_EVENT_UNKNOWN: {
    code: 1033, http: 422,
    zh: '不支持的 Webhook 事件：{event}', en: 'Unknown webhook event: {event}',
    cause: 'An endpoint subscribes to events the platform sends: invoice.issued and webhook.test.',
    remedy: '从 invoice.issued、webhook.test 中选择。', remedyEn: 'Choose from invoice.issued and webhook.test.',
  },
  BUYER_EMAIL_MISSING: {
    code: 3030, http: 422,
    zh: '发票 {number} 没有购买方邮箱，无法发送', en: 'Invoice {number} has no buyer email address to send to',
    cause: 'The buyer gave no email address when the invoice was issued, and none was given now.',
    remedy: '在请求中填写收件地址（to），或下载 PDF 交给购买方。', remedyEn: 'Give an address in the request (to), or download the PDF and hand it over.',
  },
  DELIVERY_STILL_PENDING: {
    code: 3031, http: 409,
    zh: '推送 {delivery} 仍在进行中，无需重新推送', en: 'Delivery {delivery} is still being attempted; no redelivery needed',
    cause: 'A delivery that has not yet succeeded or given up is retried automatically.',
    remedy: '等待自动重试，或在推送记录中查看每次尝试的结果。', remedyEn: 'Wait for the automatic retries, or look at each attempt in the delivery log.',
  },
  PRINT_JOB_NOT_CANCELLABLE: {
    code: 3032, http: 409,
    zh: '打印任务 {job} 当前状态为 {state}，不能取消', en: 'Print job {job} is {state} and cannot be cancelled',
    cause: 'Only a job still waiting in the queue can be cancelled; one handed to a printer or finished cannot.',
    remedy: '在打印机上取消，或等待任务结束。', remedyEn: 'Cancel it at the printer, or let it finish.',
  },
  PRINTER_NOT_FOUND: {
    code: 6020, http: 404,
    zh: '没有编号为 {printer} 的打印机', en: 'No printer with id {printer}',
    cause: 'The printer does not exist, was removed, or belongs to another merchant.',
    remedy: '用 GET /api/v1/printers 查看本商户的打印机。', remedyEn: "List your merchant's printers with GET /api/v1/printers.",
  },
  PRINTER_UNAVAILABLE: {
    code: 6021, http: 503,
    zh: '打印机 {printer} 不可用：{reason}', en: 'Printer {printer} is unavailable: {reason}',
    cause: 'The printer is stopped, paused, missing from CUPS, out of paper, or its directory is gone. Jobs wait and retry, and move to the backup printer when one is set.',
    remedy: '检查打印机电源、纸张和连接（cupsenable 恢复队列）；急用时下载 PDF 手动打印。', remedyEn: 'Check power, paper and connection (cupsenable resumes a queue); when in a hurry, download the PDF and print it by hand.',
  },
  PRINT_JOB_NOT_FOUND: {
    code: 6022, http: 404,
    zh: '没有编号为 {job} 的打印任务', en: 'No print job with id {job}',
    cause: 'The job does not exist or belongs to another merchant.',
    remedy: '用 GET /api/v1/print-jobs 查看打印任务。', remedyEn: 'List print jobs with GET /api/v1/print-jobs.',
  },
  PRINT_JOB_FAILED: {
    code: 6023, http: 409,
    zh: '打印任务 {job} 未能打印：{reason}', en: 'Print job {job} did not print: {reason}',
    cause: 'Every attempt on the printer (and on its backup, if set) failed, or the printer could not confirm the job. It is never re-sent by itself, so nothing prints twice.',
    remedy: '下载发票 PDF（GET /api/v1/invoices/{number}/pdf）手动打印，或修好打印机后重新提交打印。', remedyEn: 'Download the PDF (GET /api/v1/invoices/{number}/pdf) and print it by hand, or submit a new print once the printer works.',
  },
  PRINTER_NAME_TAKEN: {
    code: 6024, http: 409,
    zh: '已有同名打印机：{name}', en: 'A printer with this name already exists: {name}',
    cause: "Printer names are unique within a merchant.",
    remedy: '换一个名称，或修改已有的打印机。', remedyEn: 'Choose another name, or change the existing printer.',
  },
  PRINTER_BACKUP_INVALID: {
    code: 6025, http: 422,
    zh: '备用打印机设置无效：{reason}', en: 'Backup printer is invalid: {reason}',
    cause: 'A backup must be another printer of the same merchant, and backups may not form a loop.',
    remedy: '选择本商户的另一台打印机作为备用。', remedyEn: 'Choose another printer of your merchant as the backup.',
  },
  PRINTER_IN_USE: {
    code: 6026, http: 409,
    zh: '打印机 {printer} 仍在使用中：{reason}', en: 'Printer {printer} is still in use: {reason}',
    cause: 'A printer that is the backup of another, or has jobs waiting, cannot be removed.',
    remedy: '先更改其他打印机的备用设置，或等待/取消其打印任务。', remedyEn: "Change the other printers' backup first, or let its jobs finish or cancel them.",
  },
  PRINTER_COMMAND_FAILED: {
    code: 6027, http: 502,
    zh: '打印系统命令失败：{reason}', en: 'The printing system failed: {reason}',
    cause: 'A CUPS command (lp, lpstat, cancel, ipptool) failed or is missing, or the CUPS scheduler (cupsd) is not running.',
    remedy: '确认已安装 cups 和 cups-client 并且 cupsd 正在运行（lpstat -r）。', remedyEn: 'Make sure cups and cups-client are installed and cupsd is running (lpstat -r).',
  },
  WEBHOOK_ENDPOINT_NOT_FOUND: {
    code: 6030, http: 404,
    zh: '没有编号为 {endpoint} 的 Webhook 接收地址', en: 'No webhook endpoint with id {endpoint}',
    cause: 'The endpoint does not exist or belongs to another merchant.',
    remedy: '用 GET /api/v1/webhooks 查看本商户的接收地址。', remedyEn: "List your merchant's endpoints with GET /api/v1/webhooks.",
  },
  DELIVERY_NOT_FOUND: {
    code: 6031, http: 404,
    zh: '没有编号为 {delivery} 的推送记录', en: 'No delivery with id {delivery}',
    cause: 'The delivery does not exist or belongs to another merchant.',
    remedy: '用 GET /api/v1/deliveries 查看推送记录。', remedyEn: 'List deliveries with GET /api/v1/deliveries.',
  },
  WEBHOOK_REJECTED: {
    code: 6032, http: 502,
    zh: 'Webhook 接收方未确认：{reason}', en: 'The webhook receiver did not accept the delivery: {reason}',
    cause: 'The receiver answered with a status other than 2xx, took longer than 10 s, or could not be reached. The delivery is retried with growing pauses for 24 hours.',
    remedy: '检查接收系统的日志和可用性；修复后可在推送记录中重新推送。', remedyEn: "Check the receiving system's logs and availability; once fixed, redeliver from the delivery log.",
  },
  DELIVERY_GAVE_UP: {
    code: 6033, http: 409,
    zh: '推送 {delivery} 已停止重试：{reason}', en: 'Delivery {delivery} is no longer retried: {reason}',
    cause: 'Every attempt in 24 hours failed. Nothing more is sent by itself.',
    remedy: '排除接收方故障后，用重新推送（redeliver）再发一次；接收方可按 Fapiao-Delivery-Id 去重。', remedyEn: 'Fix the receiver, then redeliver; receivers can drop duplicates by Fapiao-Delivery-Id.',
  },
  EMAIL_NOT_CONFIGURED: {
    code: 6034, http: 503,
    zh: '未配置邮件发送（FAPIAO_SMTP_URL）', en: 'Email sending is not configured (FAPIAO_SMTP_URL)',
    cause: 'The server has no SMTP server to send through.',
    remedy: '设置 FAPIAO_SMTP_URL（如 smtps://user:pass@smtp.example.cn:465）和 FAPIAO_MAIL_FROM 后重启；或下载 PDF 交给购买方。', remedyEn: 'Set FAPIAO_SMTP_URL (e.g. smtps://user:pass@smtp.example.cn:465) and FAPIAO_MAIL_FROM and restart; or download the PDF and hand it over.',
  },
  EMAIL_SEND_FAILED: {
    code: 6035, http: 502,
    zh: '邮件未能发出：{reason}', en: 'The email could not be sent: {reason}',
    cause: 'The SMTP server could not be reached, refused the message, or refused the recipient. The email is retried for 24 hours.',
    remedy: '检查 SMTP 服务器和收件地址；推送记录中可看到每次尝试的结果。', remedyEn: 'Check the SMTP server and the recipient address; the delivery log shows every attempt.',
  },
  SERVER_BUSY: {
    code: 7001, http: 503,
    zh: '服务器繁忙，请在 {seconds} 秒后重试', en: 'The server is busy; retry in {seconds} s',
    cause: 'More requests arrived than the server can answer in time.',
    remedy: '稍后重试；开票请使用同一个 Idempotency-Key，不会重复开具。', remedyEn: 'Retry shortly; when issuing, reuse the Idempotency-Key so no duplicate is made.',
  },
  RATE_LIMITED: {
    code: 7002, http: 429,
    zh: '请求过于频繁，请在 {seconds} 秒后重试', en: 'Too many requests; retry in {seconds} s',
    cause: 'Each API key and each IP address may send a limited number of requests per minute.',
    remedy: '降低请求频率，按 Retry-After 等待后重试。', remedyEn: 'Slow down and wait for Retry-After before retrying.',
  },
  INTERNAL: {
    code: 9001, http: 500,
    zh: '服务器内部错误（请求编号 {requestId}）', en: 'Internal server error (request {requestId})',
    cause: 'An unexpected error; the details are in the server log under the request ID.',
    remedy: '稍后重试；若持续出现，请把请求编号提供给技术支持。', remedyEn: 'Retry later; if it persists, give support the request ID.',
  },
  // Documents, signatures and public verification (R20, R22).
  VERIFY_LINK_INVALID: {
    code: 1022, http: 404,
    zh: '查验链接无效', en: 'The verification link is not valid',
    cause: 'The path after /v/ is not number-date-amount-check code as printed in an invoice QR code; it was cut or typed wrongly.',
    remedy: '重新扫描发票上的二维码，或在 /verify 页面手工输入发票信息。', remedyEn: 'Scan the QR code on the invoice again, or type the invoice details on the /verify page.',
  },
  VERIFICATION_LIMIT_REACHED: {
    code: 3020, http: 429,
    zh: '该发票今日查验次数已达上限（{limit} 次），请明日再试', en: 'This invoice has been verified {limit} times today, the daily limit; try again tomorrow',
    cause: 'Like the national verification platform, each invoice can be verified only a few times a day, so that nobody can probe invoices by trial.',
    remedy: '明日再查验；如需核对全部内容，请向开票方索取发票文件并离线验签（fapiao verify）。', remedyEn: 'Verify again tomorrow; to check the whole content, get the invoice file from the seller and verify its signature offline (fapiao verify).',
  },
  PDF_RENDER_FAILED: {
    code: 6001, http: 500,
    zh: '发票 {number} 的版式文件生成失败', en: 'The PDF of invoice {number} could not be made',
    cause: 'Rendering failed, e.g. the font package is missing from node_modules or the disk of the PDF cache is full.',
    remedy: '运行 npm ci 以恢复字体包，检查数据目录的磁盘空间，然后重试。', remedyEn: 'Run npm ci to restore the font package, check disk space in the data directory, and retry.',
  },
  SIGNING_KEY_UNAVAILABLE: {
    code: 6002, http: 503,
    zh: '平台签名密钥不可用：{reason}', en: 'The platform signing key is not available: {reason}',
    cause: 'The key file under FAPIAO_DATA_DIR/keys cannot be read or does not match its name.',
    remedy: '检查 keys 目录的权限（仅属主可读）与内容；必要时运行 fapiao keys rotate 生成新密钥。', remedyEn: 'Check the keys directory (readable by the owner only) and its files; if it is lost, run fapiao keys rotate to make a new key.',
  },
  INVOICE_FILE_INVALID: {
    code: 6003, http: 422,
    zh: '不是有效的发票文件：{reason}', en: 'Not a valid invoice file: {reason}',
    cause: 'The file is neither a PDF made by this platform nor a fapiao-invoice/1 JSON file, or it was cut short.',
    remedy: '使用平台下载的原始 PDF 或导出的发票文件。', remedyEn: 'Use the original PDF downloaded from the platform or the exported invoice file.',
  },
  INVOICE_SIGNATURE_INVALID: {
    code: 6004, http: 422,
    zh: '发票 {number} 验签失败：{reason}', en: 'Invoice {number} fails signature verification: {reason}',
    cause: 'The content was changed after signing, or the file was not signed by this platform: the invoice is forged or altered.',
    remedy: '不要接受该发票；向开票方索取原始发票并通过 /verify 查验。', remedyEn: 'Do not accept the invoice; ask the seller for the original and verify it at /verify.',
  },
  SIGNING_KEY_UNKNOWN: {
    code: 6005, http: 422,
    zh: '签名密钥 {key} 未知', en: 'Signing key {key} is unknown',
    cause: 'The invoice names a key that is not among the public keys given (GET /api/v1/keys lists every key the platform ever used).',
    remedy: '从 /api/v1/keys 下载最新公钥后重试；仍未知则该发票不是本平台签发的。', remedyEn: 'Download the public keys from /api/v1/keys and retry; if the key is still unknown, the invoice was not signed by this platform.',
  },
} as const satisfies Record<string, FaultSpec>;

/** The two languages every fault speaks: Chinese first, English second. */
export type Language = 'zh' | 'en';

/** Prose filled into a template: a reason, a state, a kind of thing. Each language gets its own words. */
export interface Bilingual {
  readonly zh: string;
  readonly en: string;
}

/** A value filled into a template: the same in both languages (a number, a field name, an invoice number) or prose in both. */
export type FaultParam = string | Bilingual;

/** Placeholders that always hold prose: a why, a how-it-was-resolved, a kind or state of a thing. */
export const proseParams = ['reason', 'resolution', 'kind', 'state', 'binding'] as const;

/**
 * The values of a fault's placeholders. Prose parameters must be Bilingual, so the compiler refuses
 * an English-only reason that would otherwise end up inside the Chinese message.
 */
export type FaultParams = { readonly [K in (typeof proseParams)[number]]?: Bilingual } & { readonly [key: string]: FaultParam | undefined };

export function bilingual(zh: string, en: string): Bilingual {
  return { zh, en };
}

/**
 * Prose around a detail that only exists in one language: a library's or the operating system's
 * message, an errno, an answer of the tax service. The Chinese says what kind of problem it is and
 * keeps the detail as 原文 (the original words), so nothing is lost in either language.
 */
export function withOriginal(zh: string, original: string, en?: string): Bilingual {
  return { zh: `${zh}（原文：${original}）`, en: en === undefined ? original : `${en}: ${original}` };
}

/** The detail of an error thrown by a library or the operating system: its errno code when it has one, else its message. */
export function originalOf(error: unknown): string {
  return (error as NodeJS.ErrnoException | undefined)?.code ?? (error instanceof Error ? error.message : String(error));
}

export function inLanguage(param: FaultParam, language: Language): string {
  return typeof param === 'string' ? param : param[language];
}

export class Fault extends Error {
  constructor(
    readonly spec: FaultSpec,
    readonly params: FaultParams = {},
    readonly details: FieldIssue[] = [],
    /** Seconds a client should wait before retrying (sent as Retry-After). */
    readonly retryAfterSeconds?: number,
  ) {
    super(faultMessage(spec, params, 'en'));
    this.name = `Fault ${spec.code}`;
  }

  get code(): number {
    return this.spec.code;
  }

  /** The message in one language (`message` is the English one, for logs and stacks). */
  messageIn(language: Language): string {
    return faultMessage(this.spec, this.params, language);
  }

  /** The message in both languages, e.g. to become the reason of another fault. */
  inBoth(): Bilingual {
    return { zh: this.messageIn('zh'), en: this.message };
  }
}

/** A fault's template in one language with each placeholder filled in that language. */
export function faultMessage(spec: FaultSpec, params: FaultParams, language: Language): string {
  return fill(spec[language], params, language);
}

function fill(template: string, params: FaultParams, language: Language): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => {
    const param = params[key];
    return param === undefined ? whole : inLanguage(param, language);
  });
}

export function faultByCode(code: number): FaultSpec | undefined {
  return Object.values(faults).find((spec) => spec.code === code);
}
