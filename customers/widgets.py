from django import forms


class CustomerSearchSelect(forms.Select):
    """A customer select that renders only the chosen customer, with a search box that loads
    matching customers into it (htmx), so no form lists every customer of a large CRM."""

    template_name = "customers/widgets/customer_search_select.html"

    def optgroups(self, name, value, attrs=None):
        # ASCII digits that fit a bigint: "²".isdigit() is true too, and the database refuses
        # it (and anything past 18 digits) as an id.
        chosen = [v for v in value if str(v).isascii() and str(v).isdigit() and len(str(v)) < 19]
        queryset = self.choices.queryset.filter(pk__in=chosen) if chosen else []
        options = [self.create_option(name, "", "— search for a customer —", not chosen, 0)]
        options += [
            self.create_option(name, customer.pk, str(customer), True, index, attrs=attrs)
            for index, customer in enumerate(queryset, start=1)
        ]
        return [(None, options, 0)]
