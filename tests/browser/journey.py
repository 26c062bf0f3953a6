"""The "Done when" journey of issue 16 in a real browser (Debian's Chromium through WebDriver).

A buyer signs up, tops up by card on the simulator, buys two items from two merchants by wallet
and sees the order paid and the balance exact; a merchant adds a product and sees the sale; an
admin refunds it and the buyer sees the refund. Screenshots of the main pages go to
SCREENSHOTS_DIR, and axe-core checks the main pages for accessibility violations.

Started by tests/api/web_browser.rs against a server it runs in process; reads its settings
from the environment: BASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD, SCREENSHOTS_DIR, AXE_JS.
"""

import os
import sys
import tempfile
import time
import uuid

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

BASE = os.environ["BASE_URL"].rstrip("/")
ADMIN_EMAIL = os.environ["ADMIN_EMAIL"]
ADMIN_PASSWORD = os.environ["ADMIN_PASSWORD"]
SHOTS = os.environ["SCREENSHOTS_DIR"]
AXE_JS = os.environ.get("AXE_JS", "")
PASSWORD = "browser pass 123"
RUN = uuid.uuid4().hex[:8]
BUYER = f"buyer-{RUN}@example.com"
MERCHANT = f"lamps-{RUN}@example.com"
LAMP = f"Desk lamp {RUN}"

AXE_PAGES = []


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
                     "--disable-gpu", "--lang=en-US"):
        options.add_argument(argument)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    # Elements of the next page are waited for; the checks that could match the previous page
    # wait for a notice or an address of their own.
    driver.implicitly_wait(5)
    return driver


class Journey:
    def __init__(self, driver):
        self.d = driver
        # A page replaced while it is read leaves stale elements: read again.
        self.wait = WebDriverWait(driver, 15, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))

    def go(self, path):
        self.d.get(BASE + path)

    def field(self, name, value):
        element = self.d.find_element(By.ID, f"f-{name}")
        element.clear()
        element.send_keys(value)

    def press(self, text, scope=None):
        """Clicks the submit button with this text (within `scope`, a CSS selector of a form)."""
        root = self.d.find_element(By.CSS_SELECTOR, scope) if scope else self.d
        button = root.find_element(By.XPATH, f".//button[normalize-space()='{text}']")
        button.click()

    def text(self, css):
        return self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, css))).text

    def expect_notice(self, text):
        """Waits for the page that says `text` (a click returns before the next page loads)."""
        self.wait.until(lambda d: any(text in e.text for e in d.find_elements(By.CSS_SELECTOR, ".notice")))

    def add_to_cart(self):
        self.press("Add to cart")
        self.expect_notice("Added to your cart.")

    def expect_path(self, prefix):
        self.wait.until(lambda d: d.current_url.startswith(BASE + prefix))

    def shot(self, name):
        os.makedirs(SHOTS, exist_ok=True)
        self.d.save_screenshot(os.path.join(SHOTS, f"{name}.png"))
        AXE_PAGES.append((name, self.d.current_url))

    def sign_up(self, email, role):
        self.go("/sign-up")
        self.field("email", email)
        self.field("password", PASSWORD)
        self.d.find_element(By.CSS_SELECTOR, f"input[name=role][value={role}]").click()
        self.press("Create account")
        self.expect_notice("Welcome!")

    def sign_in(self, email, password):
        self.go("/sign-in")
        self.field("email", email)
        self.field("password", password)
        self.press("Sign in")
        self.wait.until(lambda d: "/sign-in" not in d.current_url)

    def sign_out(self):
        self.press("Sign out", "header")
        self.expect_path("/sign-in")

    def balance(self):
        return self.text("#balance")

    def run(self):
        # Errors from the use cases show next to their field.
        self.go("/sign-up")
        self.shot("sign-up")
        self.field("email", "not an address")
        self.field("password", "short")
        self.press("Create account")
        assert self.d.find_element(By.ID, "f-email-error").text, "the e-mail error is shown by its field"

        # A merchant signs up and puts a product on sale.
        self.sign_up(MERCHANT, "merchant")
        self.expect_path("/merchant")
        self.field("name", LAMP)
        self.field("description", "A lamp for late accounting.")
        self.field("price", "12.50")
        self.field("stock", "5")
        self.press("Add product")
        self.expect_notice("The product is on sale.")
        assert LAMP in self.d.page_source
        self.sign_out()

        # The buyer signs up and tops up by card on the simulator's hosted page.
        self.sign_up(BUYER, "customer")
        self.shot("catalog")
        self.go("/wallet")
        assert self.balance() == "$0.00", self.balance()
        self.field("amount", "100.00")
        self.press("Top up")
        self.wait.until(lambda d: "/simulator/checkout/" in d.current_url)
        self.shot("simulator-checkout")
        self.d.find_element(By.ID, "pay").click()
        self.d.find_element(By.ID, "return").click()
        self.expect_path("/wallet")
        for _ in range(20):
            if self.balance() == "$100.00":
                break
            time.sleep(0.5)
            self.d.refresh()
        assert self.balance() == "$100.00", self.balance()
        self.shot("wallet-after-top-up")

        # Two items from two merchants: the seeded shop's mug and the new lamp, found by search.
        self.go("/catalog?q=" + RUN)
        self.d.find_element(By.LINK_TEXT, LAMP).click()
        self.shot("product")
        self.add_to_cart()
        self.go("/catalog?q=Ceramic+mug")
        self.d.find_element(By.LINK_TEXT, "Ceramic mug").click()
        self.add_to_cart()
        assert self.text("#cart-total") == "$24.50", self.text("#cart-total")
        self.shot("cart")
        self.press("Place order")
        self.expect_path("/orders/")
        order_url = self.d.current_url.split("?")[0]
        assert "paid" in self.text("#order-status")
        assert self.text("#order-total") == "$24.50"
        self.shot("order-paid")
        self.go("/wallet")
        assert self.balance() == "$75.50", self.balance()
        self.shot("wallet")
        self.sign_out()

        # The merchant sees the sale.
        self.sign_in(MERCHANT, PASSWORD)
        self.go("/merchant")
        sales = self.d.find_element(By.ID, "sales").find_element(By.XPATH, "following-sibling::*[1]")
        assert LAMP in sales.text, sales.text
        self.shot("merchant-console")
        self.sign_out()

        # An admin refunds the lamp merchant's share.
        self.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        self.go("/admin/orders")
        self.shot("admin-orders")
        self.d.get(order_url)
        select = self.d.find_element(By.ID, "f-merchant")
        for option in select.find_elements(By.TAG_NAME, "option"):
            if LAMP in option.text:
                option.click()
        self.field("reason", "Arrived broken")
        self.d.execute_script("document.querySelectorAll('form[data-confirm]').forEach(f => f.removeAttribute('data-confirm'))")
        self.press("Refund")
        self.expect_notice("The refund is on its way.")
        assert "$12.50" in self.text("#refunds")
        self.shot("admin-order-refunded")
        self.go("/admin/ledger")
        assert self.text("#ledger-ok")
        # The back office's records: the buyer's top-up, and the buyer with the adjustment form.
        self.go("/admin/payments")
        self.d.find_element(By.CSS_SELECTOR, "a[href^='/admin/payments/']").click()
        assert self.text("#payment-amount") == "$100.00", self.text("#payment-amount")
        self.shot("admin-payment")
        self.go("/admin/users")
        self.d.find_element(By.LINK_TEXT, BUYER).click()
        assert self.text("#adjust-title")
        self.shot("admin-user")
        self.sign_out()

        # The buyer sees the refund, and the money back.
        self.sign_in(BUYER, PASSWORD)
        self.d.get(order_url)
        assert "$12.50" in self.text("#refunds")
        assert "refunded" in self.text("#order-status")
        self.go("/wallet")
        assert self.balance() == "$88.00", self.balance()

        # A card checkout: the provider's page, then back to the order, paid once its webhook lands.
        self.go("/catalog?q=Notebook")
        self.d.find_element(By.LINK_TEXT, "Notebook A5").click()
        self.add_to_cart()
        self.d.find_element(By.CSS_SELECTOR, "input[name=method][value=card]").click()
        self.press("Place order")
        self.wait.until(lambda d: "/simulator/checkout/" in d.current_url)
        self.d.find_element(By.ID, "pay").click()
        self.d.find_element(By.ID, "return").click()
        self.expect_path("/orders/")
        self.wait.until(lambda d: "paid" in d.find_element(By.ID, "order-status").text)
        assert "card" in self.d.page_source

        # A call to the merchant: live duration and cost, then ended and billed.
        self.go("/calls")
        self.field("receiver", MERCHANT)
        self.field("rate", "0.50")
        self.press("Start call")
        self.expect_notice("The call has started.")
        self.wait.until(lambda d: ":" in d.find_element(By.CSS_SELECTOR, "[data-live-since]").text)
        self.shot("call-live")
        self.press("End call")
        self.expect_notice("The call has ended and is billed.")
        assert "$0.50" in self.text("ul.grid")
        self.go("/wallet")
        assert self.balance() == "$87.50", self.balance()
        self.d.set_window_size(390, 844)
        self.go("/catalog")
        self.d.save_screenshot(os.path.join(SHOTS, "catalog-phone.png"))
        self.d.set_window_size(1280, 900)


def accessibility(driver):
    """Runs axe-core on each screenshotted page; serious and critical violations fail."""
    if not AXE_JS:
        print("AXE_JS is not set: accessibility not checked", file=sys.stderr)
        return []
    with open(AXE_JS, encoding="utf-8") as f:
        axe = f.read()
    failures = []
    checked = 0
    for name, url in AXE_PAGES:
        if "/simulator/" in url:
            continue  # the provider's page, not ours
        driver.get(url)
        driver.execute_script(axe)
        result = driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']}).then(r => done(r.violations.map("
            "v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))));"
        )
        checked += 1
        for violation in result:
            line = f"{name}: {violation['impact']} {violation['id']}: {violation['help']} at {violation['nodes'][:3]}"
            print(line, file=sys.stderr)
            if violation["impact"] in ("serious", "critical"):
                failures.append(line)
    print(f"axe-core: {checked} pages checked, {len(failures)} serious or critical violations")
    return failures


def main():
    driver = browser()
    journey = Journey(driver)
    try:
        journey.run()
        failures = accessibility(driver)
    except Exception:
        failure = os.path.join(tempfile.gettempdir(), "journey-failure.png")
        driver.save_screenshot(failure)
        print(f"failed at {driver.current_url} (screenshot: {failure})", file=sys.stderr)
        print(driver.page_source[:4000], file=sys.stderr)
        raise
    finally:
        driver.quit()
    if failures:
        print(f"{len(failures)} serious accessibility violations", file=sys.stderr)
        sys.exit(1)
    print("journey done")


if __name__ == "__main__":
    main()
