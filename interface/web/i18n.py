"""The pages' words in English and Russian: UI strings, response and reason names, and the audit's whys as sentences.

Templates write ``_("English text")``; Russian is looked up here (``RU``). Response names come from
the catalogue (``domain.catalogue``: the seed's Russian names).
"""

from __future__ import annotations

from domain.catalogue import COUNTED, IGNORED, RESPONSES, SET

RU: dict[str, str] = {
    # frame
    "Recipient responses": "Отклики получателей",
    "Mailings": "Рассылки",
    "Contacts": "Контакты",
    "Rules": "Правила",
    "What-if": "Что если",
    "Inbox": "Входящие",
    "Sign out": "Выйти",
    "Sign in": "Войти",
    "Language": "Язык",
    "Time zone": "Часовой пояс",
    "Times are shown in %(tz)s.": "Время указано в поясе %(tz)s.",
    "Set": "Применить",
    "Back": "Назад",
    "Skip to content": "К содержимому",
    # login
    "API token": "API-токен",
    "Sign in with an API token of this service (RESPONSES_API_TOKENS; `responses serve` keeps one in ./var/api-token).": "Войдите с API-токеном этого сервиса (RESPONSES_API_TOKENS; `responses serve` хранит его в ./var/api-token).",
    "That token is not one this service accepts.": "Этот токен сервис не принимает.",
    "Too many failed sign-ins from your address. Try again in %(seconds)d s.": "Слишком много неудачных входов с вашего адреса. Повторите через %(seconds)d с.",
    "No API token is configured: set RESPONSES_API_TOKENS, or start `responses serve` once to create ./var/api-token.": "API-токен не настроен: задайте RESPONSES_API_TOKENS или запустите `responses serve`, чтобы создать ./var/api-token.",
    "Please sign in.": "Пожалуйста, войдите.",
    "Signed out.": "Вы вышли.",
    "The form expired (its security token did not match). Please try again.": "Форма устарела (не совпал её защитный токен). Попробуйте ещё раз.",
    # mailings list
    "All categories": "Все категории",
    "bulk": "массовая",
    "trigger": "триггерная",
    "Category": "Категория",
    "Search by name or id": "Поиск по названию или id",
    "Search": "Найти",
    "Name": "Название",
    "Provider": "Провайдер",
    "Start": "Старт",
    "Audience": "Аудитория",
    "Sent": "Отправлено",
    "Delivered": "Доставлено",
    "Delivery rate": "Доставляемость",
    "Open rate": "Открываемость",
    "Click rate": "Кликабельность",
    "Bounce rate": "Доля отказов",
    "No mailings match.": "Нет подходящих рассылок.",
    "Next page": "Следующая страница",
    "First page": "Первая страница",
    "not started": "не начата",
    # mailing page
    "Mailing": "Рассылка",
    "Email type": "Тип рассылки",
    "Results": "Итоги рассылки",
    "Opens and clicks": "Открытия и переходы",
    "Links": "Анализ переходов",
    "Unique opens": "Уникальные открытия",
    "Total opens": "Всего открытий",
    "Unique clicks": "Уникальные переходы",
    "Total clicks": "Всего переходов",
    "Click-to-open rate": "CTOR (переходы / открытия)",
    "Unsubscribe rate": "Доля отписок",
    "Spam complaint rate": "Доля жалоб на спам",
    "of sent": "от отправленных",
    "of delivered": "от доставленных",
    "of unique opens": "от уникальных открытий",
    "no denominator yet": "знаменатель пока 0",
    "Contact": "Контакт",
    "Full name": "Имя",
    "Email": "Email",
    "Response": "Отклик",
    "Response reason": "Причина отклика",
    "Opens": "Открытия",
    "Clicks": "Переходы",
    "Updated": "Обновлено",
    "History": "История",
    "All responses": "Все отклики",
    "Filter": "Фильтр",
    "Export CSV": "Выгрузить CSV",
    "Started from": "Старт с",
    "to": "по",
    "Sort by": "Сортировать по",
    "Order": "Порядок",
    "highest first": "сначала больше",
    "lowest first": "сначала меньше",
    "Start date": "Дата старта",
    "Tick two to five mailings to compare their rates.": "Отметьте от двух до пяти рассылок, чтобы сравнить их показатели.",
    "Compare": "Сравнить",
    "Previous page": "Предыдущая страница",
    "Page %(page)s of %(pages)s": "Страница %(page)s из %(pages)s",
    "mailings": "рассылок",
    "Compare mailings": "Сравнение рассылок",
    "Each rate with its difference from the first mailing, in percentage points.": "Каждый показатель и его разница с первой рассылкой в процентных пунктах.",
    "Rate": "Показатель",
    "Median of the last %(n)s mailings of this category": "Медиана последних рассылок этой категории: %(n)s",
    "median of last %(n)s": "медиана последних %(n)s",
    "Choose two to five mailings to compare.": "Выберите от двух до пяти рассылок для сравнения.",
    "First opens and first clicks per day": "Первые открытия и переходы по дням",
    "First opens and first clicks per clock hour": "Первые открытия и переходы по часам",
    "Buckets are days of your time zone beyond 72 hours.": "Дольше 72 часов — по дням вашего часового пояса.",
    "Buckets are the clock hours of your time zone.": "Столбцы — часы вашего часового пояса.",
    "Day": "День",
    "Export for Excel": "Выгрузить для Excel",
    "UTF-8 with a BOM, cells separated by ;": "UTF-8 с BOM, ячейки разделены «;»",
    "No recipients match.": "Нет подходящих получателей.",
    "recipients": "получателей",
    "Delivery errors": "Диаграмма ошибок отправки",
    "Responses of the groups not sent and not delivered, each split by reason.": "Отклики групп «не отправлено» и «не доставлено», по причинам.",
    "No delivery errors.": "Ошибок отправки нет.",
    "Count": "Количество",
    "Reasons": "Причины",
    "no reason given": "причина не указана",
    "Delivery funnel": "Воронка доставки",
    "Audience, sent, delivered, opened (unique), clicked (unique).": "Аудитория, отправлено, доставлено, открыто (уникальные), переходы (уникальные).",
    "Opened": "Открыто",
    "Clicked": "Переходы",
    "Stage": "Этап",
    "Share of audience": "Доля аудитории",
    "Hours": "Часов",
    "Show": "Показать",
    "Hour": "Час",
    "From": "С",
    "First opens": "Первые открытия",
    "First clicks": "Первые переходы",
    "The mailing has not started: there is nothing to chart yet.": "Рассылка не начата: графика пока нет.",
    "Each recipient counts once, in the hour of their first open or first click (provider time), from the start at %(start)s.": "Каждый получатель учтён один раз — в час первого открытия или перехода (время провайдера), от старта %(start)s.",
    "Click map": "Карта кликов",
    "URL": "URL",
    "All clicks, repeats included": "Все переходы, с повторами",
    "Recipients who clicked it": "Получатели, перешедшие по ней",
    "Share of the recipients who clicked any link": "Доля от получателей, перешедших по любой ссылке",
    "A recipient may click several links, so the shares add up to more than 100 %.": "Получатель может перейти по нескольким ссылкам, поэтому сумма долей больше 100 %.",
    "No clicks yet.": "Переходов пока нет.",
    "Unsubscribe links are not clicks (rules: unsubscribe_url_patterns).": "Ссылки отписки — не переходы (правила: unsubscribe_url_patterns).",
    # history
    "Too many histories are being folded right now; try again in a few seconds.": "Сейчас строится слишком много историй; повторите через несколько секунд.",
    "Recipient": "Получатель",
    "Audit history": "История отклика",
    "As of": "На момент",
    "Rules version": "Версия правил",
    "active": "активная",
    "now": "сейчас",
    "Explain": "Объяснить",
    "Received": "Получено",
    "Provider time": "Время провайдера",
    "Effective time": "Учтённое время",
    "provider clock ahead by %(seconds)s s beyond the allowance": "часы провайдера спешат на %(seconds)s с сверх допуска",
    "Source": "Источник",
    "What the provider said": "Что сообщил провайдер",
    "Maps to": "Соответствует",
    "New built-in rules: %(version)s": "Новые встроенные правила: %(version)s",
    "The built-in rules %(version)s read UniOne and SendGrid as their own tools do (machine opens, sender-side failures that no longer suppress a contact, SendGrid's drop reasons and bounce classifications). Your active rules %(active)s stay until you adopt them; adopting replaces the active rules whole.": "Встроенные правила %(version)s читают UniOne и SendGrid так, как их читают их собственные инструменты (открытия роботами, ошибки на стороне отправителя больше не блокируют контакт, причины отбрасывания и классы отказов SendGrid). Активные правила %(active)s действуют, пока вы не примете новые; принятие заменяет активные правила целиком.",
    "Preview against your history": "Проверить на своей истории",
    "Preview": "Проверить",
    "Adopt rules version %(version)s: activate it (a rebuild of every view).": "Принять правила версии %(version)s: активировать их (все представления будут перестроены).",
    "Effect": "Действие",
    "Why": "Почему",
    "Response after": "Отклик после",
    "nothing": "ничему",
    "No signals.": "Сигналов нет.",
    "Later signals": "Следующие сигналы",
    "Response now": "Текущий отклик",
    "Under rules version %(version)s.": "По правилам версии %(version)s.",
    "Signals received up to %(at)s.": "Сигналы, полученные до %(at)s.",
    "set": "установлен",
    "counted": "учтён",
    "ignored": "проигнорирован",
    # contacts
    "Contact id or email": "Id контакта или email",
    "No contact matches.": "Нет подходящих контактов.",
    "Do not use email": "Не использовать Email",
    "Email is actual": "Email актуален",
    "Unsubscribed from types": "Отписан от типов рассылок",
    "none": "нет",
    "yes": "да",
    "no": "нет",
    "Responses across mailings": "Отклики по рассылкам",
    "Bulk and trigger mailings.": "Массовые и триггерные рассылки.",
    "No responses yet.": "Откликов пока нет.",
    "Change flags": "Изменить признаки",
    "keep": "не менять",
    "New email": "Новый email",
    "A manual change is journaled on the contact and wins over earlier effects; a new email makes the address actual again.": "Ручное изменение записывается в журнал контакта и важнее прежних эффектов; новый email снова делает адрес актуальным.",
    "Save": "Сохранить",
    "Subscriptions": "Подписки",
    "Subscribed": "Подписан",
    "Unsubscribe": "Отписать",
    "Subscribe": "Подписать",
    "Saved.": "Сохранено.",
    "Erased on": "Удалён",
    "the personal data is destroyed; the counts stay.": "персональные данные уничтожены, счётчики сохранены.",
    "Personal data": "Персональные данные",
    "Export data": "Выгрузить данные",
    "(everything kept about this contact, as JSON)": "(всё, что хранится об этом контакте, в JSON)",
    "Erasing destroys this contact's address, name and every provider payload about them, in every mailing, for good. Counts, responses and flags stay; a suppression stays in force.": "Удаление навсегда уничтожает адрес, имя контакта и все данные провайдеров о нём во всех рассылках. Счётчики, отклики и флаги остаются; запрет на отправку продолжает действовать.",
    "Basis": "Основание",
    "I understand this cannot be undone": "Я понимаю, что это нельзя отменить",
    "Erase": "Удалить",
    "Give the basis of the erasure, at most 200 characters.": "Укажите основание удаления, не длиннее 200 символов.",
    "Confirm that this cannot be undone.": "Подтвердите, что понимаете: это нельзя отменить.",
    "Erased: the contact's personal data is destroyed; its counts stay.": "Удалено: персональные данные контакта уничтожены, счётчики сохранены.",
    "Erased contacts": "Удалённые контакты",
    "Signals": "Сигналы",
    "No contact was erased.": "Ни один контакт не удалён.",
    "Change nothing: choose a flag or give an email.": "Ничего не изменено: выберите признак или укажите email.",
    "Flags": "Признаки",
    "Suppressed": "Не рассылать",
    # rules
    "Active version": "Активная версия",
    "Versions": "Версии",
    "Version": "Версия",
    "Created": "Создана",
    "By": "Кем",
    "Changes": "Изменения",
    "Based on": "На основе",
    "built in": "встроенная",
    "the defaults": "значения по умолчанию",
    "State diagram": "Диаграмма состояний",
    "State diagram of rules version %(version)s": "Диаграмма состояний правил версии %(version)s",
    "Non-final responses by priority: a higher one replaces a lower one. Finals end the change.": "Неконечные отклики по приоритету: более высокий замещает более низкий. Конечные завершают смену откликов.",
    "Priority": "Приоритет",
    "Final": "Конечный",
    "Group": "Группа",
    "Show diagram": "Показать диаграмму",
    "replaced by a higher priority": "замещается более приоритетным",
    "any final replaces a non-final": "любой конечный замещает неконечный",
    "after %(hours)s h without confirmation": "через %(hours)s ч без подтверждения",
    "Statistics period (days)": "Период обновления статистики (дней)",
    "Job": "Задача",
    "Activating rules version %(version)s": "Активация правил версии %(version)s",
    "Progress": "Выполнено",
    "Status": "Состояние",
    "running": "выполняется",
    "done": "готово",
    "failed": "ошибка",
    "This page refreshes itself until the job is done.": "Страница обновляется сама, пока задача не завершится.",
    "Refresh": "Обновить",
    "Rules version %(version)s is active.": "Правила версии %(version)s активны.",
    # what-if
    "Try a rule change against all history; nothing live changes until you adopt it.": "Проверьте изменение правил на всей истории; до принятия ничего не меняется.",
    "Common options": "Основные параметры",
    "Soft bounce is final": "Soft Bounce — конечный отклик",
    "Count machine opens": "Учитывать открытия роботами",
    "Unsubscribe from all mailings": "Отписка от всех рассылок",
    "Soft bounces before the address is not actual (empty: off)": "Soft Bounce подряд, после которых адрес неактуален (пусто: выкл.)",
    "Scanner click window, seconds (empty: off)": "Окно кликов сканеров, секунд (пусто: выкл.)",
    "Machine open window, seconds (empty: off)": "Окно открытий роботами, секунд (пусто: выкл.)",
    "Confirmation timeout, hours": "Ожидание подтверждения, часов",
    "Response after the confirmation timeout": "Отклик по истечении ожидания подтверждения",
    "Unsubscribe URL patterns (one a line, RE2)": "Шаблоны URL отписки (по одному в строке, RE2)",
    "Machine user agents (one a line, RE2)": "User agent роботов (по одному в строке, RE2)",
    "Full ruleset document (JSON patch, merged over the fields above)": "Полный документ правил (JSON-патч поверх полей выше)",
    "Mailings (empty: all)": "Рассылки (пусто: все)",
    "Examples": "Примеры",
    "Run what-if": "Запустить",
    "The ruleset is not valid.": "Правила некорректны.",
    "Too many what-ifs are queued or running (%(pending)s of %(limit)s). Try again in %(seconds)s s.": "Слишком много проверок в очереди или в работе (%(pending)s из %(limit)s). Повторите через %(seconds)s с.",
    "Transitions": "Переходы откликов",
    "No recipient changes response.": "Ни один отклик не меняется.",
    "Before": "До",
    "After": "После",
    "Recipients considered": "Рассмотрено получателей",
    "Response changed": "Отклик изменился",
    "Counters changed": "Счётчики изменились",
    "Newly suppressed contacts": "Контакты, которым больше не пишем",
    "No longer suppressed contacts": "Контакты, которым снова пишем",
    "Adopt": "Принять",
    "Adopt these rules: create the version and activate it (a rebuild of every view).": "Принять правила: создать версию и активировать её (перестроение всех представлений).",
    "Running the what-if…": "Выполняется проверка…",
    "What-if result": "Результат проверки",
    "Explanation": "Объяснение",
    "change": "изменение",
    "Rates": "Показатели",
    "must be a whole number": "должно быть целым числом",
    "must be a number": "должно быть числом",
    "not valid JSON": "некорректный JSON",
    "a JSON object": "JSON-объект",
    # inbox
    "Unmatched": "Без получателя",
    "Quarantine": "Карантин",
    "Notices": "Уведомления",
    "Signals that matched no recipient (yet): they are matched when the recipient appears.": "Сигналы, не нашедшие получателя (пока): будут сопоставлены, когда получатель появится.",
    "Input that could not be understood, kept whole with the error.": "Непонятые входные данные, сохранённые целиком с ошибкой.",
    "Provider notices about sending in general.": "Уведомления провайдера об отправке в целом.",
    "Confirm the subscription": "Подтвердить подписку",
    "Nothing here.": "Здесь пусто.",
    "Reason": "Причина",
    "Error": "Ошибка",
    "Raw": "Исходные данные",
    "Kind": "Вид",
    "Correlation": "Сопоставление",
    "Signal": "Сигнал",
    # errors
    "Not found": "Не найдено",
    "Something went wrong": "Что-то пошло не так",
    "Back to mailings": "К рассылкам",
}

GROUPS = {
    "preparing": ("Preparing", "Подготовка"),
    "delivered": ("Delivered", "Доставлено"),
    "not_delivered": ("Not delivered", "Не доставлено"),
    "not_sent": ("Not sent", "Не отправлено"),
}

# The summary's rates as the pages name them (sorting, comparison).
RATE_NAMES = {
    "delivery": ("Delivery rate", "Доставляемость"),
    "open": ("Open rate", "Открываемость"),
    "click": ("Click rate", "Кликабельность"),
    "click_to_open": ("Click-to-open rate", "CTOR (переходы / открытия)"),
    "bounce": ("Bounce rate", "Доля отказов"),
    "unsubscribe": ("Unsubscribe rate", "Доля отписок"),
    "spam_complaint": ("Spam complaint rate", "Доля жалоб на спам"),
}

REASONS = {
    "will_retry": ("will retry", "будет повтор"),
    "unknown_recipient": ("unknown recipient", "неизвестный получатель"),
    "mailbox_problem": ("mailbox problem", "проблема с ящиком"),
    "spam_reject": ("rejected as spam", "отклонено как спам"),
    "domain_not_found": ("domain not found", "домен не найден"),
    "ip_reputation": ("sender IP reputation", "репутация IP отправителя"),
    "recipient_blocked": ("recipient blocked", "получатель заблокирован"),
    "other": ("other", "другое"),
    "previously_bounced": ("previously bounced", "ранее был отказ"),
    "sender_blocked": ("sender or campaign blocked", "заблокирован отправитель или рассылка"),
    "content_rejected": ("content rejected", "содержимое отклонено"),
    "rate_limited": ("rate limited", "превышен лимит скорости"),
    "technical": ("technical failure", "техническая ошибка"),
}

# What a signal's mapping does to the contact beyond its response (CONTRACT §5).
CONTACT_EFFECTS = {
    "unsubscribe": ("unsubscribes the contact", "отписывает контакт"),
    "suppress": ("the address is not to be used", "адрес больше не используется"),
    "resubscribe": ("subscribes the contact to this type again", "снова подписывает контакт на этот тип"),
}

# What a fold step did, as a sentence: (effect, why) → English and Russian.
WHYS = {
    "duplicate": ("the same signal was already folded (a provider retry)", "этот сигнал уже был учтён (повтор провайдера)"),
    "final": ("a final response was already set", "конечный отклик уже установлен"),
    "lower_priority": ("the response already has a priority at least as high", "у текущего отклика приоритет не ниже"),
    "period_closed": ("it arrived after the statistics period closed", "он пришёл после окончания периода статистики"),
    "informational": ("the provider's status maps to no response", "статус провайдера не соответствует отклику"),
    "unsubscribe_link": ("an unsubscribe link is not a click", "ссылка отписки — не переход"),
    "not_delivered": (
        "the mail was never delivered, so engagement counts nowhere",
        "письмо не доставлено, поэтому действия не учитываются",
    ),
    "machine_open": (
        "an open by a machine (e.g. a privacy proxy) is not counted",
        "открытие роботом (например, прокси) не учитывается",
    ),
    "machine_click": ("a click right after delivery is a scanner's", "переход сразу после доставки сделан сканером"),
    "superseded": ("the recipient was no longer waiting for confirmation", "получатель уже не ждал подтверждения"),
    "not_due": ("the confirmation timeout was not due yet", "срок ожидания подтверждения ещё не истёк"),
}


def translate(text: str, lang: str, **values: object) -> str:
    out = RU.get(text, text) if lang == "ru" else text
    return out % values if values else out


def response_name(code: str | None, lang: str) -> str:
    if code is None:
        return ""
    response = RESPONSES.get(code)
    return response.name(lang) if response else code


def rate_name(rate: str, lang: str) -> str:
    en, ru = RATE_NAMES.get(rate, (rate, rate))
    return ru if lang == "ru" else en


def reason_name(reason: str | None, lang: str) -> str:
    if not reason:
        return ""
    names = REASONS.get(reason)
    return (names[1] if lang == "ru" else names[0]) if names else reason


def contact_effect_name(effect: str | None, lang: str) -> str:
    if not effect:
        return ""
    names = CONTACT_EFFECTS.get(effect)
    return (names[1] if lang == "ru" else names[0]) if names else effect


def group_name(group: str, lang: str) -> str:
    names = GROUPS.get(group, (group, group))
    return names[1] if lang == "ru" else names[0]


def why_sentence(effect: str, why: str | None, response_after: str | None, lang: str) -> str:
    """ "Ignored: a final response was already set." — what a step did and why, as a marketer reads it."""
    ru = lang == "ru"
    reason = WHYS.get(why or "", (why or "", why or ""))[1 if ru else 0]
    if effect == SET:
        name = response_name(response_after, lang)
        return f"Установлен отклик «{name}»." if ru else f"Set the response to “{name}”."
    if effect == COUNTED:
        head = "Учтён в счётчиках; отклик не изменился" if ru else "Counted in the opens or clicks; the response stayed"
        return f"{head}: {reason}." if reason else f"{head}."
    if effect == IGNORED:
        head = "Проигнорирован" if ru else "Ignored"
        return f"{head}: {reason}." if reason else f"{head}."
    return reason


# What was not found, as a sentence in each language (Russian needs the word's gender and case).
NOT_FOUND_SENTENCES = {
    "mailing": ("No mailing “{key}”", "Рассылка «{key}» не найдена"),
    "contact": ("No contact “{key}”", "Контакт «{key}» не найден"),
    "recipient": ("No recipient “{key}”", "Получатель «{key}» не найден"),
    "ruleset version": ("No ruleset version “{key}”", "Версия правил «{key}» не найдена"),
    "job": ("No job “{key}”", "Задача «{key}» не найдена"),
    "wave": ("No wave “{key}”", "Волна «{key}» не найдена"),
}


def not_found_sentence(what: str, key: str, lang: str) -> str:
    en, ru = NOT_FOUND_SENTENCES.get(what, ("No {what} “{key}”", "Не найдено: {what} «{key}»"))
    return (ru if lang == "ru" else en).format(what=what, key=key)
