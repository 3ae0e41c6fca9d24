"""Fill the zh_Hans catalog: ``python scripts/zh_hans_catalog.py``.

Runs ``makemessages`` for zh_Hans, then fills every empty msgstr from TRANSLATIONS
below (the one place the Chinese wording of the UI is kept), compiles the catalog and
lists any msgid still untranslated (tests/test_i18n.py fails on those).
"""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "homeclub"
PO = PKG / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"

TRANSLATIONS: dict[str, str | list[str]] = {
    # common
    "API": "API",
    "user": "用户",
    "name": "名称",
    "token hint": "令牌提示",
    "limited to": "限定范围",
    "expires at": "过期时间",
    "revoked at": "吊销时间",
    "last used at": "最近使用",
    "API token": "API 令牌",
    "API tokens": "API 令牌",
    "This field is required.": "这个字段是必填项。",
    "The token cannot reach beyond the user's scope.": "令牌的范围不能超出该用户的权限范围。",
    "Common": "通用",
    "The request could not be processed.": "无法处理该请求。",
    "Some fields are not valid.": "部分字段填写有误。",
    "Not found.": "未找到。",
    "You do not have permission to do this.": "您没有执行此操作的权限。",
    "The request conflicts with the current state.": "该请求与当前状态冲突。",
    "The system is busy, please retry shortly.": "系统繁忙，请稍后重试。",
    "Enter a valid 18-digit resident ID number.": "请输入有效的 18 位居民身份证号码。",
    "The birth date in the ID number is not a real date.": "身份证号码中的出生日期不是有效日期。",
    "The birth date in the ID number is out of range.": "身份证号码中的出生日期超出范围。",
    "The ID number's check digit is wrong.": "身份证号码校验位错误。",
    "created at": "创建时间",
    "updated at": "更新时间",
    "Create": "新建",
    "Update": "修改",
    "Delete": "删除",
    "Reveal personal data": "查看完整个人信息",
    "Export": "导出",
    "Log in": "登录",
    "Failed log in": "登录失败",
    "Log out": "退出登录",
    "Create API token": "创建 API 令牌",
    "Revoke API token": "吊销 API 令牌",
    "Other": "其他",
    "time": "时间",
    "actor": "操作人",
    "actor name": "操作人姓名",
    "action": "操作",
    "object type": "对象类型",
    "object id": "对象编号",
    "object": "对象",
    "changes": "变更内容",
    "IP address": "IP 地址",
    "user agent": "客户端",
    "request id": "请求编号",
    "audit event": "审计记录",
    "audit events": "审计记录",
    "In progress": "处理中",
    "Done": "已完成",
    "idempotency key": "幂等键",
    "idempotency keys": "幂等键",
    "job": "任务",
    "period start": "周期开始",
    "enqueued at": "入队时间",
    "task id": "任务编号",
    "scheduled run": "定时执行记录",
    "scheduled runs": "定时执行记录",
    "Enter a valid Chinese mobile or landline number.": "请输入有效的中国手机号码或固定电话号码。",
    "Enter a valid Chinese mobile number.": "请输入有效的中国手机号码。",
    "Console": "控制台",
    "Username": "用户名",
    "Password": "密码",
    "Name": "姓名",
    "Mobile": "手机号",
    "Gender": "性别",
    "ID number": "身份证号",
    "Birth date": "出生日期",
    "Project": "项目",
    "Consultant": "置业顾问",
    "Note": "备注",
    "Home": "首页",
    "Customers": "客户",
    "Organisation": "组织架构",
    "Audit log": "审计日志",
    "Male": "男",
    "Female": "女",
    "Unknown": "未知",
    "gender": "性别",
    "mobile": "手机号",
    "birth date": "出生日期",
    "project": "项目",
    "consultant": "置业顾问",
    "note": "备注",
    "customer": "客户",
    "customers": "客户",
    "This customer already exists.": "该客户已存在。",
    "Your role may not reveal personal data.": "您的角色无权查看完整个人信息。",
    "Created at": "创建时间",
    "Your role may not export data.": "您的角色无权导出数据。",
    "The export has %(count)s rows; your role may export at most %(limit)s.": "本次导出共 %(count)s 行，您的角色最多可导出 %(limit)s 行。",
    "Demo data": "演示数据",
    "Messaging": "消息",
    "homeclub": "万家客户会",
    "Group": "集团",
    "City company": "城市公司",
    "kind": "类型",
    "code": "编码",
    "parent": "上级",
    "path": "路径",
    "city": "城市",
    "address": "地址",
    "active": "启用",
    "org node": "组织节点",
    "org nodes": "组织节点",
    "Residential": "住宅",
    "Commercial": "商业",
    "Hotel": "酒店",
    "Property services": "物业服务",
    "group": "集团",
    "business unit": "业务单元",
    "business units": "业务单元",
    "full name": "姓名",
    "role": "角色",
    "language": "语言",
    "users": "用户",
    "System administrator": "系统管理员",
    "Club operator": "客户会运营",
    "Sales manager": "案场经理",
    "Sales consultant": "置业顾问",
    "Channel manager": "渠道经理",
    "Channel agent": "经纪人",
    "Customer service": "客服",
    "Merchant staff": "特约商户店员",
    "Analyst": "分析师",
    "Member": "会员",
    "Your role may read but not change data.": "您的角色为只读，不能修改数据。",
    "Project not found.": "项目不存在。",
    "A group has no parent, a city belongs to a group, a project to a city.": "集团没有上级，城市公司属于集团，项目属于城市公司。",
    "Wrong parent for this kind of node.": "该类型节点的上级不正确。",
    "This code is already used.": "该编码已被使用。",
    "Business units belong to the group.": "业务单元必须隶属于集团。",
    "Unknown role.": "未知角色。",
    "External users are not attached to org nodes.": "外部用户不能挂靠组织节点。",
    "Staff must be attached to at least one org node.": "员工必须至少挂靠一个组织节点。",
    "This username is taken.": "该用户名已被占用。",
    "Menu": "菜单",
    "Administration": "系统管理",
    "Language": "语言",
    "All actions": "全部操作",
    "Time": "时间",
    "Actor": "操作人",
    "Action": "操作",
    "Object": "对象",
    "Changes": "变更内容",
    "No customers.": "暂无客户。",
    "%(n)s customer": ["共 %(n)s 位客户"],
    "Edit": "编辑",
    "Delete this customer?": "确定删除该客户吗？",
    "Show full number (audited)": "查看完整号码（将记录审计）",
    "History": "变更历史",
    "Save": "保存",
    "Cancel": "取消",
    "New customer": "新建客户",
    "Edit customer": "编辑客户",
    "Export to Excel": "导出 Excel",
    "Name or last digits of phone": "姓名或手机尾号",
    "All projects": "全部项目",
    "Back to home": "返回首页",
    "Home · %(role_label)s": "首页 · %(role_label)s",
    "My projects": "我的项目",
    "Account locked": "账户已锁定",
    "Too many failed sign-in attempts. Try again in 15 minutes or ask an administrator to unlock the account.": "登录失败次数过多，请 15 分钟后再试，或联系管理员解锁。",
    "Sign in": "登录",
    "Business units": "业务单元",
    "Copy this token now; it will not be shown again:": "请立即复制此令牌，之后将不再显示：",
    "Token name, e.g. CRM sync": "令牌名称，例如 CRM 同步",
    "Create token": "创建令牌",
    "Token hint": "令牌提示",
    "Last used at": "最近使用",
    "Revoked": "已吊销",
    "Revoke": "吊销",
    # api errors
    "Enter a whole number.": "请输入整数。",
    "Enter a number.": "请输入数字。",
    "Enter a valid date (YYYY-MM-DD).": "请输入有效日期（YYYY-MM-DD）。",
    "Enter a valid date and time.": "请输入有效的日期和时间。",
    "Enter true or false.": "请输入 true 或 false。",
    "Select a valid choice.": "请选择有效的选项。",
    "Enter text.": "请输入文本。",
    "Expected an object.": "需要一个 JSON 对象。",
    "The request body is not valid JSON.": "请求体不是有效的 JSON。",
    "Sign in or send a valid API token.": "请登录或提供有效的 API 令牌。",
    "Method not allowed.": "不支持该请求方法。",
    "Something went wrong on our side.": "服务器出现错误，请稍后重试。",
    "The Idempotency-Key is too long.": "Idempotency-Key 过长。",
    "This Idempotency-Key was used for a different request.": "该 Idempotency-Key 已用于另一个不同的请求。",
    "The first request with this Idempotency-Key is still running; retry.": "使用该 Idempotency-Key 的首次请求仍在处理中，请稍后重试。",
    "Page not found.": "页面不存在。",
    "The request is too large.": "请求内容过大。",
    "Too many requests; retry shortly.": "请求过于频繁，请稍后重试。",
    # customers / console
    "A customer with this phone already exists.": "该手机号的客户已存在。",
    "A customer with this ID number already exists.": "该身份证号的客户已存在。",
    "This field cannot be changed.": "该字段不可修改。",
    "Customer list": "客户列表",
    "Arrives with its module": "随对应模块上线",
    "My customers": "我的客户",
    "Customers in my scope": "我权限范围内的客户",
    "Follow-ups due today": "今日待跟进",
    "Reception board": "接待看板",
    "Sales control": "销控",
    "Channel reports today": "今日渠道报备",
    "Risk flags": "风险预警",
    "My reports": "我的报备",
    "My commissions": "我的佣金",
    "Members": "会员",
    "Upcoming events": "近期活动",
    "Open tickets": "待处理工单",
    "Care tasks due": "待办关怀任务",
    "Verify a member voucher": "核销会员券",
    "My member card": "我的会员卡",
    "My points": "我的积分",
    "Customers by city": "各城市客户数",
    "Customer saved.": "客户已保存。",
    "Customer deleted.": "客户已删除。",
    "Token revoked.": "令牌已吊销。",
    # messaging
    "SMS": "短信",
    "Email": "邮件",
    "WeChat template message": "微信模板消息",
    "Transactional": "事务通知",
    "Marketing": "营销",
    "Queued": "排队中",
    "Sending": "发送中",
    "Sent": "已发送",
    "Failed": "失败",
    "Blocked": "已拦截",
    "Cancelled": "已取消",
    "channel": "渠道",
    "purpose": "用途",
    "recipient": "接收方",
    "created by": "创建人",
    "template": "模板",
    "context": "数据",
    "subject": "主题",
    "body": "正文",
    "status": "状态",
    "block reason": "拦截原因",
    "attempts": "尝试次数",
    "next attempt at": "下次尝试时间",
    "claimed at": "领取时间",
    "last error": "最近错误",
    "provider message id": "服务商消息编号",
    "sent at": "发送时间",
    "deduplication key": "去重键",
    "WeChat template id": "微信模板编号",
    "message template": "消息模板",
    "message templates": "消息模板",
    "outbound message": "外发消息",
    "outbound messages": "外发消息",
    "Django template syntax, e.g. {{ name }}.": "使用 Django 模板语法，例如 {{ name }}。",
    "Email only. Django template syntax, e.g. {{ name }}.": "仅用于邮件。使用 Django 模板语法，例如 {{ name }}。",
    "E.164 phone number, email address or WeChat openid.": "E.164 格式手机号、邮箱地址或微信 openid。",
    "Enter a valid email address.": "请输入有效的邮箱地址。",
    "Enter a valid WeChat openid.": "请输入有效的微信 openid。",
    "Unknown channel.": "未知的发送渠道。",
    "Unknown message purpose.": "未知的消息用途。",
    "The key is too long.": "该键过长。",
    "The message data cannot be stored as JSON.": "消息数据无法保存为 JSON。",
    "The message template is not valid.": "消息模板无效。",
    "There is no message template with this code for this channel.": "该渠道没有此编码的消息模板。",
    "Only a queued message can be cancelled.": "只能取消排队中的消息。",
    "Only a queued or failed message can be retried.": "只能重试排队中或失败的消息。",
    "Retry now": "立即重试",
    "%(count)d message queued again.": ["%(count)d 条消息已重新排队。"],
    "%(count)d message cancelled.": ["%(count)d 条消息已取消。"],
    "The demo data is already loaded.": "演示数据已加载。",
}


def parse_entries(text: str) -> list[tuple[int, int]]:
    return [
        (m.start(), m.end()) for m in re.finditer(r"(?ms)^(?:#.*?\n)*msgid .*?(?=\n\n|\Z)", text)
    ]


def unquote(block: str, key: str) -> str:
    m = re.search(rf'(?ms)^{key} ((?:".*?"\n?)+)', block)
    if not m:
        return ""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))
    return "".join(parts).encode().decode("unicode_escape").encode("latin-1").decode()


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def fill(text: str) -> tuple[str, list[str]]:
    missing: list[str] = []
    out: list[str] = []
    for block in text.split("\n\n"):
        msgid = unquote(block, "msgid")
        if not msgid or "msgid " not in block:
            out.append(block)
            continue
        block = block.replace("#, fuzzy\n", "").replace(", fuzzy", "")
        block = re.sub(r"(?m)^#\| .*\n?", "", block)
        plural = "msgid_plural" in block
        current = unquote(block, "msgstr[0]" if plural else "msgstr")
        wanted = TRANSLATIONS.get(msgid)
        if wanted is None:
            if not current:
                missing.append(msgid)
            out.append(block)
            continue
        head = block.split("\nmsgstr")[0]
        if plural:
            forms = wanted if isinstance(wanted, list) else [wanted]
            body = "\n".join(f"msgstr[{i}] {quote(f)}" for i, f in enumerate(forms))
        else:
            body = "msgstr " + quote(wanted if isinstance(wanted, str) else wanted[0])
        out.append(head + "\n" + body)
    return "\n\n".join(out), missing


def main() -> int:
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run(
        [*manage, "makemessages", "-l", "zh_Hans", "--no-obsolete", "--no-location"],
        cwd=PKG,
        check=True,
    )
    text, missing = fill(PO.read_text())
    PO.write_text(text)
    subprocess.run([*manage, "compilemessages", "-l", "zh_Hans"], cwd=PKG, check=True)
    for m in missing:
        print("untranslated:", m)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
